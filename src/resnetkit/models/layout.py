"""Layer conventions: names, biases, BatchNorm constants, padding and stride placement.

Two models with the same architecture only give the same outputs for the same weights if
these details agree, so each weight ecosystem gets one ``Layout``:

- ``TORCH``: torchvision/timm. No conv biases, BN epsilon 1e-5 (momentum 0.1 in PyTorch's
  sense = 0.9 in Keras'), stride on the 3×3 conv ("v1.5"), symmetric padding, max-pool padded
  with -inf. Our own layer names (``stage2_block1_conv1``).
- ``KERAS_V1`` / ``KERAS_V2``: keras.applications ResNet*/ResNet*V2, with their layer names.
- ``SEED``: the original article's Keras code (Keras defaults, ``padding="same"``).

``LayerFactory`` creates every layer of a model so that the conventions and the dtype
policy are applied in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import keras

from resnetkit.models.layers import (
    BatchNormalization,
    PaddedConv2D,
    TorchMaxPool2D,
    conv2d_layer,
)


@dataclass(frozen=True)
class Layout:
    """How one weight ecosystem builds and names the layers of a ResNet."""

    name: str
    bn_epsilon: float
    bn_momentum: float
    # Roles ("stem_conv", "conv1", "shortcut_conv", ...) whose convolution has a bias.
    biased: frozenset[str] = frozenset()
    # Bottleneck stride on the first 1×1 conv (Keras v1, original paper) instead of the 3×3.
    stride_in_1x1: bool = False
    # Stage stride on the last block instead of the first (Keras v2).
    stride_in_last_block: bool = False
    # Max-pool padding: "-inf" (PyTorch), "zero" (Keras Applications' ZeroPadding2D).
    maxpool_padding: str = "-inf"
    # Strided convs padded by a ZeroPadding2D layer of their own, as keras.applications builds
    # them (its layer list is kept), instead of inside the convolution (``PaddedConv2D``).
    pad_layers: bool = False
    # Stage s, block b -> name prefix.
    block_prefix: str = "stage{stage}_block{block}"
    # Role -> suffix for blocks, role -> full name for stem and head; default: the role.
    block_names: Mapping[str, str] = field(default_factory=dict)
    top_names: Mapping[str, str] = field(default_factory=dict)

    def top(self, role: str) -> str:
        return self.top_names.get(role, role)

    def block(self, role: str, stage: int, block: int) -> str:
        prefix = self.block_prefix.format(stage=stage, keras_stage=stage + 1, block=block)
        return prefix + self.block_names.get(role, f"_{role}")


TORCH = Layout("torch", bn_epsilon=1e-5, bn_momentum=0.9)

SEED = Layout(
    "seed",
    bn_epsilon=1e-3,  # Keras defaults, as the article's code uses them
    bn_momentum=0.99,
    biased=frozenset({"stem_conv", "conv1", "conv2"}),
    maxpool_padding="zero",
)

_KERAS_TOP = {
    "stem_pad": "conv1_pad",
    "stem_conv": "conv1_conv",
    "stem_bn": "conv1_bn",
    "stem_relu": "conv1_relu",
    "stem_pool_pad": "pool1_pad",
    "stem_pool": "pool1_pool",
    "final_bn": "post_bn",
    "final_relu": "post_relu",
    "head_avg_pool": "avg_pool",
    "head_max_pool": "max_pool",
    "head_fc": "predictions",
}

KERAS_V1 = Layout(
    "keras_v1",
    bn_epsilon=1.001e-5,
    bn_momentum=0.99,
    biased=frozenset({"stem_conv", "conv1", "conv2", "conv3", "shortcut_conv"}),
    stride_in_1x1=True,
    maxpool_padding="zero",
    pad_layers=True,
    block_prefix="conv{keras_stage}_block{block}",
    block_names={
        "shortcut_conv": "_0_conv",
        "shortcut_bn": "_0_bn",
        "conv1": "_1_conv",
        "bn1": "_1_bn",
        "relu1": "_1_relu",
        "conv2": "_2_conv",
        "bn2": "_2_bn",
        "relu2": "_2_relu",
        "conv3": "_3_conv",
        "bn3": "_3_bn",
        "add": "_add",
        "out": "_out",
    },
    top_names=_KERAS_TOP,
)

KERAS_V2 = Layout(
    "keras_v2",
    bn_epsilon=1.001e-5,
    bn_momentum=0.99,
    biased=frozenset({"stem_conv", "conv3", "shortcut_conv"}),
    stride_in_last_block=True,
    maxpool_padding="zero",
    pad_layers=True,
    block_prefix="conv{keras_stage}_block{block}",
    block_names={
        # Pre-activation: bn{i} is the BatchNorm *before* conv{i}.
        "bn1": "_preact_bn",
        "relu1": "_preact_relu",
        "shortcut_conv": "_0_conv",
        "shortcut_pool": "_0_pool",
        "conv1": "_1_conv",
        "bn2": "_1_bn",
        "relu2": "_1_relu",
        "pad2": "_2_pad",
        "conv2": "_2_conv",
        "bn3": "_2_bn",
        "relu3": "_2_relu",
        "conv3": "_3_conv",
        "add": "_out",
    },
    top_names=_KERAS_TOP,
)

LAYOUTS = {layout.name: layout for layout in (TORCH, SEED, KERAS_V1, KERAS_V2)}


class LayerFactory:
    """Creates the layers of one model with its layout's conventions and dtype policy."""

    def __init__(self, layout: Layout, dtype: str | keras.DTypePolicy | None = None):
        self.layout = layout
        self.dtype = dtype

    def conv(
        self,
        x,
        filters: int,
        kernel: int,
        *,
        name: str | None,
        role: str,
        pad_name: str | None = None,
        strides: int = 1,
        groups: int = 1,
        dilation: int = 1,
        padding: str = "symmetric",
        zero_init: bool = False,
    ):
        """Conv2D; ``padding="symmetric"`` pads k//2 on every side like PyTorch (``dilation``
        × k//2 for a dilated convolution, as torchvision's ``padding=dilation``).

        Keras' "same" equals that for stride 1 but pads only bottom/right for stride 2, so
        strided convs pad inside the convolution (``PaddedConv2D``), or, in layouts with
        ``pad_layers``, by a ZeroPadding2D before a "valid" convolution. Dilated
        convolutions have stride 1 (dilation replaces the stride), so "same" is exact.
        """
        if dilation > 1 and strides > 1:
            raise ValueError(f"{name}: a dilated convolution must have stride 1")
        pad = kernel // 2
        layer, extra = conv2d_layer(dilation if padding == "symmetric" else 1), {}
        if padding == "symmetric" and strides > 1 and pad:
            conv_padding = "valid"
            if self.layout.pad_layers:
                x = keras.layers.ZeroPadding2D(pad, name=pad_name, dtype=self.dtype)(x)
            else:
                layer, extra = PaddedConv2D, {"pad": pad}
        elif padding == "symmetric":
            conv_padding = "same"
        else:
            conv_padding = padding
        return layer(
            filters,
            kernel,
            strides=strides,
            padding=conv_padding,
            groups=groups,
            dilation_rate=dilation,
            use_bias=role in self.layout.biased,
            kernel_initializer="zeros" if zero_init else "he_normal",
            name=name,
            dtype=self.dtype,
            **extra,
        )(x)

    def bn(self, x, *, name: str | None, zero_init: bool = False):
        return BatchNormalization(
            epsilon=self.layout.bn_epsilon,
            momentum=self.layout.bn_momentum,
            gamma_initializer="zeros" if zero_init else "ones",
            name=name,
            dtype=self.dtype,
        )(x)

    def relu(self, x, *, name: str | None):
        return keras.layers.ReLU(name=name, dtype=self.dtype)(x)

    def max_pool(self, x, *, name: str, pad_name: str, pool_size: int = 3, strides: int = 2):
        """Stem max-pool with k//2 padding, padded as the layout's ecosystem pads it."""
        pad = pool_size // 2
        if self.layout.maxpool_padding == "-inf":
            return TorchMaxPool2D(pool_size, strides, pad, name=name, dtype=self.dtype)(x)
        x = keras.layers.ZeroPadding2D(pad, name=pad_name, dtype=self.dtype)(x)
        return keras.layers.MaxPooling2D(pool_size, strides, name=name, dtype=self.dtype)(x)
