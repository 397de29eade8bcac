"""The two layers Keras does not have that ResNets need.

- ``ZeroPadShortcut``: He et al.'s option-A shortcut (strided subsampling, then zero-filled
  extra channels). It has no weights; a ``Lambda`` would do the same but cannot be
  reloaded with ``safe_mode=True``.
- ``TorchMaxPool2D``: max pooling with symmetric ``-inf`` padding, as PyTorch's
  ``MaxPool2d(padding=p)``. Keras' ``padding="same"`` pads asymmetrically for stride 2 and
  ``ZeroPadding2D`` differs wherever the input can be negative (a pre-activation stem).

Stochastic depth needs no layer of its own: ``keras.layers.Dropout`` with
``noise_shape=(None, 1, 1, 1)`` drops whole samples of a residual branch and rescales.
"""

from __future__ import annotations

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
