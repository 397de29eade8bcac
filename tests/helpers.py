"""Shared test helpers."""

from __future__ import annotations

import zlib

import numpy as np


def fill_weights(model, seed: int = 0) -> None:
    """Give every weight deterministic values that depend on its path, not on layer order.

    Kernels get He-scaled normals, BN statistics plausible positive values, so that deep
    networks in inference mode keep finite, non-trivial outputs.
    """
    for w in model.weights:
        rng = np.random.default_rng(zlib.crc32(f"{seed}/{w.path}".encode()))
        shape = tuple(w.shape)
        leaf = w.path.rsplit("/", 1)[-1]
        if leaf in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif leaf == "gamma":
            value = rng.uniform(0.2, 0.6, shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape)
        else:  # beta, moving_mean, bias
            value = rng.normal(0.0, 0.1, shape)
        w.assign(value.astype(w.dtype))


def images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype("float32")
