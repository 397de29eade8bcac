"""The layers Keras does not have (or not fast enough) that ResNets need.

- ``ZeroPadShortcut``: He et al.'s option-A shortcut (strided subsampling, then zero-filled
  extra channels). It has no weights; a ``Lambda`` would do the same but cannot be
  reloaded with ``safe_mode=True``.
- ``TorchMaxPool2D``: max pooling with symmetric ``-inf`` padding, as PyTorch's
  ``MaxPool2d(padding=p)``. Keras' ``padding="same"`` pads asymmetrically for stride 2 and
  ``ZeroPadding2D`` differs wherever the input can be negative (a pre-activation stem).

- ``PaddedConv2D``: ``Conv2D`` padded symmetrically inside the convolution, as PyTorch's
  ``Conv2d(padding=p)``. A ``ZeroPadding2D`` before a "valid" convolution computes the same,
  but keeps a padded copy of the input for the backward pass, which costs memory and time in
  every training step (``benchmarks/speed.py``'s training loop does not show the memory saving
  yet; not explained). Its gradient is written by hand (``_explicit_pad_conv``): TensorFlow
  runs the gradients of explicitly padded convolutions in Eigen, not oneDNN, and Eigen's
  bfloat16 kernels are many times slower. The figures: docs/training.md and docs/speed.md.

- ``DilatedConv2D``: ``Conv2D`` whose dilation runs in TensorFlow's own convolution kernel.
  Keras calls ``tf.nn.convolution``, which turns a dilated convolution into space-to-batch,
  a convolution and batch-to-space; at DeepLab's rates (12/24/36) the padded blocks make
  that several times the work (``benchmarks/results/measurements.json``), while
  ``tf.nn.conv2d`` hands the dilation to oneDNN. Inside ``explicit_padding()`` (the
  exporters) it pads, then convolves "valid", which every runtime accepts.

- ``BatchNormalization``: Keras' own layer, but training steps run TensorFlow's fused
  batch-norm kernel. Keras 3 normalizes with separate moment and elementwise ops, which
  make a small network's training step markedly slower, in float32 and bfloat16 alike.
  Inference is Keras' unchanged code, so pretrained-weight equivalence is exact.
  It keeps Keras' class name, hence the same automatic layer names and weight files.

Stochastic depth needs no layer of its own: ``keras.layers.Dropout`` with
``noise_shape=(None, 1, 1, 1)`` drops whole samples of a residual branch and rescales.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="resnetkit")
class ZeroPadShortcut(keras.layers.Layer):
    """Identity shortcut that subsamples by ``strides`` and zero-pads to ``channels``."""

    def __init__(self, channels: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.strides = int(strides)

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :] if self.strides > 1 else inputs
        extra = self.channels - x.shape[-1]
        if extra < 0:
            raise ValueError(
                f"ZeroPadShortcut cannot shrink {x.shape[-1]} channels to {self.channels}"
            )
        before = extra // 2
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [before, extra - before]])

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape

        def sub(d):
            return None if d is None else -(-d // self.strides)

        return (n, sub(h), sub(w), self.channels)

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels, "strides": self.strides}


@keras.saving.register_keras_serializable(package="resnetkit")
class TorchMaxPool2D(keras.layers.Layer):
    """``MaxPool2d(pool_size, strides, padding)`` with PyTorch's symmetric -inf padding."""

    def __init__(self, pool_size: int = 3, strides: int = 2, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.strides = int(strides)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        if p:
            inputs = ops.pad(
                inputs, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=-float("inf")
            )
        return ops.max_pool(inputs, self.pool_size, self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape

        def out(d):
            return (
                None if d is None else (d + 2 * self.padding - self.pool_size) // self.strides + 1
            )

        return (n, out(h), out(w), c)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


@keras.saving.register_keras_serializable(package="resnetkit")
class PaddedConv2D(keras.layers.Conv2D):
    """Channels-last ``Conv2D`` with ``pad`` zeros on every side of the input (``padding``
    stays "valid")."""

    def __init__(self, *args, pad: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "valid" or self.data_format != "channels_last":
            raise ValueError(
                "PaddedConv2D pads by itself and is channels-last; got "
                f"padding={self.padding!r}, data_format={self.data_format!r}"
            )
        self.pad = int(pad)

    def convolution_op(self, inputs, kernel):
        p = self.pad
        paddings = [[0, 0], [p, p], [p, p], [0, 0]]
        if (
            p
            and keras.backend.backend() == "tensorflow"
            and self.groups == 1
            and tuple(self.dilation_rate) == (1, 1)
        ):
            return _explicit_pad_conv(inputs, kernel, self.strides, p)
        # Grouped/dilated convolutions (ResNeXt) and other backends: pad, then Keras' conv.
        return super().convolution_op(ops.pad(inputs, paddings), kernel)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = 2 * self.pad
        inner = (n, None if h is None else h + grow, None if w is None else w + grow, c)
        return super().compute_output_shape(inner)

    def get_config(self) -> dict:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="resnetkit")
class DilatedConv2D(keras.layers.Conv2D):
    """A stride-1, "same", channels-last ``Conv2D`` with ``dilation_rate`` > 1 (see above)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "same" or tuple(self.strides) != (1, 1) or (
                self.data_format != "channels_last"):  # fmt: skip
            raise ValueError(
                "DilatedConv2D is stride 1, 'same' and channels-last; got "
                f"strides={self.strides}, padding={self.padding!r}, "
                f"data_format={self.data_format!r}"
            )

    def convolution_op(self, inputs, kernel):
        if keras.backend.backend() != "tensorflow":
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        # Grouped too (ResNeXt): the kernel's input channels are the group's.
        rates = list(self.dilation_rate)
        if not _EXPLICIT_PADDING.get():
            return tf.nn.conv2d(inputs, kernel, strides=1, padding="SAME", dilations=rates)
        # Exporting: zero-padded, then "valid". The exporters write a dilated "SAME"
        # convolution as an auto-padded one, which onnxruntime and LiteRT's XNNPACK refuse;
        # in training "SAME" stays, as oneDNN runs it faster than the padded form.
        (ph, pw) = (r * (k // 2) for r, k in zip(rates, self.kernel_size, strict=True))
        padded = tf.pad(inputs, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        return tf.nn.conv2d(padded, kernel, strides=1, padding="VALID", dilations=rates)


_EXPLICIT_PADDING = contextvars.ContextVar("explicit_padding", default=False)


@contextmanager
def explicit_padding() -> Iterator[None]:
    """While a graph is traced for export: ``DilatedConv2D`` pads explicitly (see above)."""
    token = _EXPLICIT_PADDING.set(True)
    try:
        yield
    finally:
        _EXPLICIT_PADDING.reset(token)


def conv2d_layer(dilation: int):
    """``DilatedConv2D`` for a dilated convolution, else Keras' ``Conv2D``."""
    return DilatedConv2D if dilation > 1 else keras.layers.Conv2D


def _explicit_pad_conv(inputs, kernel, strides, pad: int):
    """TensorFlow convolution with explicit symmetric padding (no padded copy is kept for
    the backward pass) whose gradients run as "valid" convolutions of the padded input.

    TensorFlow 2.21 hands the gradients of an explicitly padded convolution to Eigen instead
    of oneDNN. In bfloat16 Eigen's kernels are very slow, so the backward pass of a strided
    convolution would dominate the step; as "valid" convolutions it stays on oneDNN. The
    padded copy exists only while the gradient is computed.
    """
    import tensorflow as tf

    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
    step = [1, *strides, 1]

    @tf.custom_gradient
    def conv(x, k):
        def grad(dy):
            padded = tf.pad(x, paddings)
            dk = tf.raw_ops.Conv2DBackpropFilter(
                input=padded,
                filter_sizes=tf.shape(k),
                out_backprop=dy,
                strides=step,
                padding="VALID",
            )
            dx = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(padded),
                filter=k,
                out_backprop=dy,
                strides=step,
                padding="VALID",
            )
            return dx[:, pad:-pad, pad:-pad, :], dk

        return tf.nn.conv2d(x, k, strides=step, padding=paddings), grad

    # A tensor, not the variable: tf.custom_gradient would otherwise ask for its gradient
    # through a ``variables`` argument when called eagerly.
    return conv(inputs, tf.convert_to_tensor(kernel))


@keras.saving.register_keras_serializable(package="resnetkit")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step uses the fused TF kernel.

    Same variables, config and inference; in training the moving statistics are updated
    with the biased batch variance, as Keras does (the kernel returns the unbiased one).
    Anything the fused kernel cannot do (masks, synchronized BN, another axis, another
    backend) falls back to Keras' implementation.
    """

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        fusable = (
            training
            and self.trainable
            and mask is None
            and rank == 4
            and self.axis in (3, -1)
            and not getattr(self, "synchronized", False)
            and keras.backend.backend() == "tensorflow"
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            tf.cast(self.gamma, tf.float32) if self.scale else tf.ones(inputs.shape[-1]),
            tf.cast(self.beta, tf.float32) if self.center else tf.zeros(inputs.shape[-1]),
            epsilon=max(self.epsilon, 1.001e-5),  # the kernel's minimum
            is_training=True,
        )
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        return y
