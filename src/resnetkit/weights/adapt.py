"""Fit pretrained weights to a different task: other input channels, another class count."""

from __future__ import annotations

import numpy as np


def adapt_input_conv(kernel: np.ndarray, channels: int) -> np.ndarray:
    """Turn a first-conv kernel (kh, kw, C_src, out) into one for ``channels`` inputs.

    One channel: the sum over the source channels, so a grey image ``g`` gives the response
    the RGB network gives to ``(g, g, g)``. More channels: the source channels repeated
    cyclically and scaled by ``C_src / channels``, which keeps the response to an
    image whose channels are alike exactly when ``channels`` is a multiple of ``C_src`` (and
    its overall scale otherwise).
    """
    source = kernel.shape[2]
    if channels == source:
        return kernel
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    reps = -(-channels // source)
    tiled = np.concatenate([kernel] * reps, axis=2)[:, :, :channels, :]
    return tiled * (source / channels)
