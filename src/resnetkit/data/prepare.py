"""``prepare_images``: uint8 images of any size → a network's input batch, as validation
sees them (the training pipeline's own ``resize_center_crop`` and ``normalize``)."""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from resnetkit.data.pipeline import normalize
from resnetkit.data.transforms import resize_center_crop
from resnetkit.preprocessing import Preprocessing


def prepare_images(
    images: list[np.ndarray] | np.ndarray, prep: Preprocessing, *, normalized: bool = True
) -> np.ndarray:
    """uint8 images of any sizes → the crops (uint8) or the normalized batch (float32).

    Evaluation geometry (``resize_center_crop`` per image, then ``normalize``), run as one
    compiled function per group of same-size images: prediction, serving and the export
    checks prepare thousands of images, which one eager call per image made the slowest
    part. Every path that feeds a trained network outside ``fit`` goes through here.
    """
    images = list(images)
    if not images:
        raise ValueError("no images to prepare")
    groups: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(np.shape(im)), []).append(i)
    channels = images[0].shape[-1]
    fn = _prepare_fn(prep, int(channels), normalized)
    out = None
    for index in groups.values():
        batch = fn(tf.convert_to_tensor(np.stack([images[i] for i in index]))).numpy()
        if out is None:
            out = np.empty((len(images), *batch.shape[1:]), batch.dtype)
        out[index] = batch
    return out


@functools.lru_cache(maxsize=16)
def _prepare_fn(prep: Preprocessing, channels: int, normalized: bool):
    @tf.function(reduce_retracing=True)
    def prepare(images):
        crops = crop_batch(images, prep, channels)
        return normalize(crops, prep) if normalized else crops

    return prepare


def crop_batch(images: tf.Tensor, prep: Preprocessing, channels: int) -> tf.Tensor:
    """``resize_center_crop`` applied to each image of a same-size batch."""
    size = prep.crop_size
    return tf.map_fn(
        lambda image: resize_center_crop(image, prep),
        images,
        fn_output_signature=tf.TensorSpec((size, size, channels), images.dtype),
    )
