"""Residual blocks: basic (two 3×3) and bottleneck (1×1, 3×3, 1×1), post- or pre-activation.

Both block types are one function, ``residual_block``, over a list of convolutions:

    post-activation (He et al. 2015):  conv → BN → ReLU → … → conv → BN → (+ shortcut) → ReLU
    pre-activation  (He et al. 2016b): BN → ReLU → conv → … → BN → ReLU → conv → (+ shortcut)

Shortcuts (He et al. 2015 §3.3 and Bag of Tricks §4.1), used only where the shape changes:

- ``"A"``: parameter-free: subsample with stride, zero-pad the new channels.
- ``"B"``: 1×1 convolution with stride (+ BN unless pre-activation).
- ``"D"``: 2×2 average pooling with stride, then the 1×1 convolution (ResNet-D).
- ``"none"``: no shortcut at all — a plain network (the degradation experiment).

Where only the resolution changes (Keras ResNet V2's last block of a stage), B and D
subsample with a 1×1 max-pool, as keras.applications does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import keras

from resnetkit.models.layers import ZeroPadShortcut
from resnetkit.models.layout import LayerFactory

SHORTCUTS = ("A", "B", "D", "none")


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of a block's residual branch."""

    filters: int
    kernel: int
    strides: int = 1
    groups: int = 1
    dilation: int = 1


def branch_convs(
    block: str,
    width: int,
    out_channels: int,
    strides: int,
    *,
    groups: int = 1,
    stride_in_1x1: bool = False,
) -> list[ConvSpec]:
    """The convolutions of a ``"basic"`` or ``"bottleneck"`` residual branch."""
    if block == "basic":
        return [ConvSpec(out_channels, 3, strides), ConvSpec(out_channels, 3)]
    if block == "bottleneck":
        first, middle = (strides, 1) if stride_in_1x1 else (1, strides)
        return [
            ConvSpec(width, 1, first),
            ConvSpec(width, 3, middle, groups),
            ConvSpec(out_channels, 1),
        ]
    raise ValueError(f"unknown block type {block!r}; expected 'basic' or 'bottleneck'")


def dilate(convs: list[ConvSpec], before: int, after: int) -> list[ConvSpec]:
    """``convs`` with every stride replaced by dilation: the convolutions up to the strided
    one are dilated by ``before``, those after it by ``after`` (``before`` × the stride).

    The dilated branch computes, at every pixel, what the strided one computes at every
    stride-th pixel: the feature maps stay that much larger and no weight changes. For
    torchvision's bottleneck (stride in the 3×3) this is its ``replace_stride_with_dilation``
    exactly: the block that loses the stride keeps the previous dilation.
    """
    out, rate = [], before
    for conv in convs:
        out.append(replace(conv, strides=1, dilation=rate if conv.kernel > 1 else 1))
        if conv.strides > 1:
            rate = after
    return out


def residual_block(
    x,
    convs: list[ConvSpec],
    make: LayerFactory,
    name,
    *,
    shortcut: str = "B",
    preact: bool = False,
    post_add_relu: bool = True,
    drop_path_rate: float = 0.0,
    zero_init_last: bool = False,
):
    """Apply one residual block to ``x``.

    ``name(role)`` gives the layer name for a role ("conv1", "bn2", "add", ...) or ``None``
    for Keras' automatic names. ``zero_init_last`` starts the block as an identity: the last
    BN's gamma is zero (post-activation) or the last conv's kernel is (pre-activation).
    """
    in_channels = x.shape[-1]
    out_channels = convs[-1].filters
    strides = 1
    for conv in convs:
        strides *= conv.strides
    last = len(convs)

    y = x
    if preact:
        y = make.relu(make.bn(y, name=name("bn1")), name=name("relu1"))
        x_act = y
    for i, conv in enumerate(convs, start=1):
        if preact and i > 1:
            y = make.relu(make.bn(y, name=name(f"bn{i}")), name=name(f"relu{i}"))
        y = make.conv(
            y,
            conv.filters,
            conv.kernel,
            strides=conv.strides,
            groups=conv.groups,
            dilation=conv.dilation,
            name=name(f"conv{i}"),
            pad_name=name(f"pad{i}"),
            role=f"conv{i}",
            zero_init=preact and zero_init_last and i == last,
        )
        if not preact:
            y = make.bn(y, name=name(f"bn{i}"), zero_init=zero_init_last and i == last)
            if i < last or (shortcut == "none" and post_add_relu):
                y = make.relu(y, name=name(f"relu{i}" if i < last else "out"))

    if shortcut == "none":
        return y

    if in_channels == out_channels and strides == 1:
        skip = x
    elif shortcut == "A":
        skip = ZeroPadShortcut(out_channels, strides, name=name("shortcut"), dtype=make.dtype)(x)
    elif in_channels == out_channels:
        pool = keras.layers.MaxPooling2D(1, strides, name=name("shortcut_pool"), dtype=make.dtype)
        skip = pool(x)
    else:
        skip = x_act if preact else x
        if shortcut == "D" and strides > 1:
            skip = keras.layers.AveragePooling2D(
                2, strides, padding="same", name=name("shortcut_pool"), dtype=make.dtype
            )(skip)
        skip = make.conv(
            skip,
            out_channels,
            1,
            strides=1 if shortcut == "D" else strides,
            name=name("shortcut_conv"),
            role="shortcut_conv",
        )
        if not preact:
            skip = make.bn(skip, name=name("shortcut_bn"))

    if drop_path_rate > 0:
        # Stochastic depth: drop the whole branch per sample, rescale the survivors.
        y = keras.layers.Dropout(
            drop_path_rate, noise_shape=(None, 1, 1, 1), name=name("drop_path"), dtype=make.dtype
        )(y)
    y = keras.layers.Add(name=name("add"), dtype=make.dtype)([skip, y])
    if post_add_relu and not preact:
        y = make.relu(y, name=name("out"))
    return y
