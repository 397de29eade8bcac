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

import keras
import tensorflow as tf

from resnetkit.data.pipeline import normalize
from resnetkit.data.prepare import crop_batch
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
        if not self.resize:
            return (*input_shape[:3], self.channels)
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
    model: keras.Model,
    prep: Preprocessing,
    *,
    resize: bool = True,
    max_pixels: int = MAX_PIXELS,
    spatial: tuple[int | None, int | None] | None = None,
) -> keras.Model:
    """``model`` behind ``ImagePreprocessing``: input ``image``, uint8, (N, H, W, C) with any
    H and W if ``resize``, else the crop size, or ``spatial`` (a segmenter's: any size, or
    the fixed size of a LiteRT artifact)."""
    channels = int(model.input_shape[-1])
    size = None if resize else prep.crop_size
    inputs = keras.Input((*(spatial or (size, size)), channels), dtype="uint8", name="image")
    layer = ImagePreprocessing(
        prep.to_dict(), channels, resize=resize, max_pixels=max_pixels, name="preprocessing"
    )
    return keras.Model(inputs, model(layer(inputs)), name=f"{model.name}_uint8")


@keras.saving.register_keras_serializable(package="resnetkit")
class CanvasPreprocessing(keras.layers.Layer):
    """uint8 images (a batch of one size) → ``(canvases, scale)`` as a detection run feeds
    its network (``tasks/detect/pipeline.py``): the longer side resized to ``canvas``
    (bilinear), normalized, padded below and right with zeros; the scale maps canvas pixels
    back to the images' own (divide by it)."""

    def __init__(self, preprocessing: dict, canvas: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.preprocessing = dict(preprocessing)
        self.prep = Preprocessing.from_dict(self.preprocessing)
        self.canvas = int(canvas)
        self.channels = int(channels)

    def call(self, images):
        hw = tf.cast(tf.shape(images)[1:3], tf.float32)
        scale = self.canvas / tf.reduce_max(hw)
        new = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), 1)
        x = normalize(tf.image.resize(tf.cast(images, tf.float32), new, method="bilinear"),
                      self.prep)  # fmt: skip
        x = tf.pad(x, [[0, 0], [0, self.canvas - new[0]], [0, self.canvas - new[1]], [0, 0]])
        x = tf.reshape(x, [-1, self.canvas, self.canvas, self.channels])
        return x, tf.fill(tf.shape(images)[:1], scale)

    def compute_output_spec(self, images):
        n = images.shape[0]
        return (keras.KerasTensor((n, self.canvas, self.canvas, self.channels), "float32"),
                keras.KerasTensor((n,), "float32"))  # fmt: skip

    def get_config(self) -> dict:
        return {**super().get_config(), "preprocessing": self.preprocessing,
                "canvas": self.canvas, "channels": self.channels}  # fmt: skip


@keras.saving.register_keras_serializable(package="resnetkit")
class BoxesToImage(keras.layers.Layer):
    """``[boxes on the canvas, scale, images]`` → the boxes in the images' own pixels."""

    def call(self, inputs):
        boxes, scale, images = inputs
        hw = tf.cast(tf.shape(images)[1:3], tf.float32)
        limit = tf.stack([hw[1], hw[0], hw[1], hw[0]])
        return tf.clip_by_value(boxes / scale[:, None, None], 0.0, limit)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, "float32")
