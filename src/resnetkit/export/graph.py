"""Preprocessing inside the exported graph, so that a deployment cannot get it wrong.

``with_preprocessing(model, prep)`` puts ``ImagePreprocessing`` in front of the network: the
artifact then takes uint8 images and applies the very functions training and evaluation use
(``resnetkit.data.pipeline.resize_center_crop`` and ``normalize``), so the two cannot drift.

Two extents, because not every runtime has every operation:

- ``resize=True`` (SavedModel, .keras): a batch of same-size uint8 images of any size
  (within ``max_pixels``) → shorter side resized, center crop, normalized.
- ``resize=False`` (ONNX, LiteRT): uint8 images already at the crop size → normalized. The
  evaluation resize is antialiased (TensorFlow's ``ScaleAndTranslate`` kernel), which neither
  tf2onnx nor the LiteRT converter (not even with TF Select ops) can express; a plain bilinear
  resize would silently differ from training, so the resize stays with the caller.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data.pipeline import normalize, resize_center_crop
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.preprocessing import Preprocessing


@keras.saving.register_keras_serializable(package="resnetkit")
class ImagePreprocessing(keras.layers.Layer):
    """uint8 NHWC images → the network's normalized float32 input (see the module doc)."""

    def __init__(
        self,
        preprocessing: dict,
        channels: int,
        resize: bool = True,
        max_pixels: int = MAX_PIXELS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.preprocessing = dict(preprocessing)
        self.prep = Preprocessing.from_dict(self.preprocessing)
        self.channels = int(channels)
        self.resize = bool(resize)
        self.max_pixels = int(max_pixels)

    def call(self, images):
        prep = self.prep
        if self.resize:
            shape = tf.shape(images, out_type=tf.int64)
            checks = [
                tf.debugging.assert_less_equal(
                    shape[1] * shape[2],
                    tf.constant(self.max_pixels, tf.int64),
                    message=f"image has more than {self.max_pixels} pixels",
                ),
                tf.debugging.assert_positive(shape[1:3], message="empty image"),
            ]
            with tf.control_dependencies(checks):
                images = tf.identity(images)
            images = crop_batch(images, prep, self.channels)
        return normalize(images, prep)

    def compute_output_shape(self, input_shape):
        size = self.prep.crop_size
        return (input_shape[0], size, size, self.channels)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "preprocessing": self.preprocessing,
            "channels": self.channels,
            "resize": self.resize,
            "max_pixels": self.max_pixels,
        }


def with_preprocessing(
    model: keras.Model, prep: Preprocessing, *, resize: bool = True, max_pixels: int = MAX_PIXELS
) -> keras.Model:
    """``model`` behind ``ImagePreprocessing``: input ``image``, uint8, (N, H, W, C) with any
    H and W if ``resize``, else the crop size."""
    channels = int(model.input_shape[-1])
    size = None if resize else prep.crop_size
    inputs = keras.Input((size, size, channels), dtype="uint8", name="image")
    layer = ImagePreprocessing(
        prep.to_dict(), channels, resize=resize, max_pixels=max_pixels, name="preprocessing"
    )
    return keras.Model(inputs, model(layer(inputs)), name=f"{model.name}_uint8")


def prepare_images(
    images: list[np.ndarray] | np.ndarray, prep: Preprocessing, *, normalized: bool = True
) -> np.ndarray:
    """uint8 images of any sizes → the crops (uint8) or the normalized batch (float32).

    The same computation as ``Classifier.prepare`` (``resize_center_crop`` per image, then
    ``normalize``), run as one compiled function per group of same-size images: the export
    checks and artifact predictions prepare thousands of images, which one eager call per
    image made the slowest part.
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
