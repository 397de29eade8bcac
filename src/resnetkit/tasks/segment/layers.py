"""Shape layers of the segmentation models: resize to another tensor's size, pad to a
multiple, crop back. Their sizes are read at run time, so one model takes any input size."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="resnetkit")
class ResizeLike(keras.layers.Layer):
    """Resize ``x`` to the height and width of ``reference``: ``[x, reference] -> x'``.

    Bilinear with half-pixel centres, as PyTorch's ``interpolate(align_corners=False)``
    (torchvision's FCN and DeepLabV3); ``nearest`` as PyTorch's ``mode="nearest"`` (source
    pixel ``floor(i × in / out)``; TensorFlow 2's own rule adds half a pixel, which differs
    unless the size exactly doubles): U-Net's and the FPNs' upsampling."""

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear' or 'nearest'; got {interpolation!r}"
            )
        self.interpolation = interpolation

    def call(self, inputs):
        import tensorflow as tf  # Keras' resize wants a static size; this one is read at run time

        x, reference = inputs
        size = tf.shape(reference)[1:3]
        if self.interpolation == "nearest":
            return tf.raw_ops.ResizeNearestNeighbor(
                images=x, size=size, align_corners=False, half_pixel_centers=False
            )
        return tf.cast(tf.image.resize(x, size, method=self.interpolation), x.dtype)

    def compute_output_shape(self, input_shapes):
        (n, _, _, c), (_, h, w, _) = input_shapes
        return (n, h, w, c)

    def get_config(self) -> dict:
        return {**super().get_config(), "interpolation": self.interpolation}


@keras.saving.register_keras_serializable(package="resnetkit")
class PadToMultiple(keras.layers.Layer):
    """Zero-pad the bottom and right of an image batch to a multiple of ``multiple``: the
    decoders that add features of every stride need sizes that halve exactly."""

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        h, w = ops.shape(x)[1], ops.shape(x)[2]
        m = self.multiple
        # (m - h % m) % m, not (-h) % m: tf2onnx turns a floor-mod of a negative number into
        # C's remainder, which would crop instead of pad in an ONNX export.
        return ops.pad(x, [[0, 0], [0, (m - h % m) % m], [0, (m - w % m) % m], [0, 0]])

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        m = self.multiple

        def up(d):
            return None if d is None else -(-d // m) * m

        return (n, up(h), up(w), c)

    def get_config(self) -> dict:
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="resnetkit")
class CropLike(keras.layers.Layer):
    """Crop ``x`` to the height and width of ``reference`` from the top left (undoes
    ``PadToMultiple``): ``[x, reference] -> x'``."""

    def call(self, inputs):
        x, reference = inputs
        h, w = ops.shape(reference)[1], ops.shape(reference)[2]
        return x[:, :h, :w, :]

    def compute_output_shape(self, input_shapes):
        (n, _, _, c), (_, h, w, _) = input_shapes
        return (n, h, w, c)
