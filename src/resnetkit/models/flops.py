"""Count multiply-accumulates (MACs) of any built Keras model from its layer shapes.

The headline figure, ``MacCount.macs``, counts convolutions (grouped and depthwise included)
and dense layers: the convention behind torchvision's "GFLOPS" column and the papers'
FLOP figures (resnet50 @224: 4.09 G). Pooling is counted separately
(``MacCount.pooling``, one operation per window element) because those conventions leave it
out; BatchNorm, activations and additions are left out, as they are by everyone (BN folds into
the convolution at inference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras

from resnetkit.models.layers import TorchMaxPool2D

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_TRANSPOSED = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)
_WINDOW_POOL = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
_GLOBAL_POOL = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
)


@dataclass
class MacCount:
    """MACs of one forward pass of one sample."""

    macs: int = 0  # convolutions + dense layers
    pooling: int = 0  # pooling window operations
    by_layer: dict[str, int] = field(default_factory=dict)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def count_params(model: keras.Model) -> tuple[int, int]:
    """(trainable, total) parameter counts.

    Trainable counts learnable weights only (PyTorch's convention: BN moving statistics
    excluded); total is Keras' ``count_params()`` (everything in the model).
    """
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return int(trainable), int(model.count_params())


def _size(shape) -> int:
    dims = list(shape[1:])
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot count MACs for an unknown spatial size (shape {tuple(shape)}); "
            "build the model with a fixed input_shape"
        )
    return math.prod(dims)


def count_macs(model: keras.Model) -> MacCount:
    """MACs for one sample through ``model`` (nested models are counted through)."""
    count = MacCount()
    _count_into(model, count, prefix="")
    return count


def _spatial(shape) -> int:
    """Positions per sample: everything between the batch and the channel axis."""
    return _size((*shape[:-1], 1))


def _count_into(model: keras.Model, count: MacCount, prefix: str) -> None:
    for layer in model.layers:
        name = prefix + layer.name
        if isinstance(layer, keras.Model):
            _count_into(layer, count, prefix=name + "/")
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            inputs = node.arguments.keras_tensors
            outputs = node.outputs
            if not inputs or not outputs:
                continue
            macs, pool = _layer_ops(layer, inputs[0].shape, outputs[0].shape)
            if macs:
                count.macs += macs
                count.by_layer[name] = count.by_layer.get(name, 0) + macs
            count.pooling += pool


def _layer_ops(layer, in_shape, out_shape) -> tuple[int, int]:
    """(MACs, pooling operations) of one call of ``layer``."""
    if isinstance(layer, _TRANSPOSED):
        # Every input position scatters a full kernel.
        return _spatial(in_shape) * math.prod(layer.kernel.shape), 0
    if isinstance(layer, (*_CONV, keras.layers.DepthwiseConv2D)):
        # Kernel (k..., in/groups, out) or (k..., in, multiplier): one MAC per output position.
        kernel = layer.kernel if hasattr(layer, "kernel") else layer.depthwise_kernel
        return _spatial(out_shape) * math.prod(kernel.shape), 0
    if isinstance(layer, keras.layers.SeparableConv2D):
        spatial = _spatial(out_shape)
        return spatial * (
            math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
        ), 0
    if isinstance(layer, keras.layers.Dense):
        return _spatial(out_shape) * math.prod(layer.kernel.shape), 0
    if isinstance(layer, _WINDOW_POOL):
        return 0, _size(out_shape) * math.prod(layer.pool_size)
    if isinstance(layer, _GLOBAL_POOL):
        return 0, _size(in_shape)
    if isinstance(layer, TorchMaxPool2D):
        return 0, _size(out_shape) * layer.pool_size**2
    return 0, 0
