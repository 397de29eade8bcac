"""Segmentation heads over a backbone's named feature maps, each a function of the feature
tensors that returns logits at some stride (``Segmenter`` brings them to the input's size).

- ``fcn``: torchvision's ``FCNHead`` (Long et al. 2015, as torchvision builds it): 3×3
  convolution to a quarter of the channels, BN, ReLU, dropout 0.1, 1×1 to the classes.
- ``deeplabv3``: ASPP (Chen et al. 2017) — a 1×1 branch, three dilated 3×3 branches, image
  pooling, a 1×1 projection with dropout 0.5 — then 3×3, BN, ReLU and 1×1, as torchvision's
  ``DeepLabHead``.
- ``deeplabv3plus``: ASPP on the last stage, upsampled to stage 1 and joined with its
  48-channel projection, two 3×3 convolutions, 1×1 (Chen et al. 2018).
- ``unet``: from the last stage up, ×2 nearest upsampling, the skip of that stride
  concatenated, two 3×3 conv-BN-ReLU per block (Ronneberger et al. 2015, on a ResNet
  encoder as segmentation_models_pytorch builds it), a 3×3 convolution to the classes.
- ``fpn``: the semantic-FPN head (Kirillov et al. 2019): 1×1 laterals and a top-down path,
  per level 3×3 conv-GroupNorm-ReLU and ×2 upsampling down to stride 4, summed, 1×1.

Names (``_conv``, ``_bn``, ``_relu``) follow each head's structure, one layer per module of
torchvision's, so that its state dicts map onto these layers.
"""

from __future__ import annotations

import keras

from resnetkit.models.layers import BatchNormalization, conv2d_layer
from resnetkit.tasks.segment.layers import ResizeLike

BN_EPSILON, BN_MOMENTUM = 1e-5, 0.9  # PyTorch's BatchNorm2d defaults


def conv_bn_relu(x, filters: int, kernel: int, name: str, *, dilation: int = 1, dtype=None):
    """Conv (no bias, "same": PyTorch's padding = dilation × k//2), BN, ReLU."""
    x = conv2d_layer(dilation)(
        filters, kernel, padding="same", dilation_rate=dilation, use_bias=False,
        kernel_initializer="he_normal", name=f"{name}_conv", dtype=dtype,
    )(x)  # fmt: skip
    x = BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn", dtype=dtype
    )(x)
    return keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)


def classifier(x, num_classes: int, name: str, *, kernel: int = 1, dtype=None):
    """The last convolution, to class logits; float32 under mixed precision."""
    mixed = str(dtype).startswith("mixed_")
    return keras.layers.Conv2D(
        num_classes, kernel, padding="same", name=name, dtype="float32" if mixed else dtype
    )(x)


def fcn(x, num_classes: int, name: str = "fcn", *, dtype=None):
    y = conv_bn_relu(x, x.shape[-1] // 4, 3, f"{name}_0", dtype=dtype)
    y = keras.layers.Dropout(0.1, name=f"{name}_dropout", dtype=dtype)(y)
    return classifier(y, num_classes, f"{name}_classifier", dtype=dtype)


def aspp(x, rates: tuple[int, ...], channels: int = 256, name: str = "aspp", *, dtype=None):
    """Atrous spatial pyramid pooling: parallel 1×1, dilated 3×3 and image-pooling branches,
    concatenated and projected to ``channels``."""
    branches = [conv_bn_relu(x, channels, 1, f"{name}_b0", dtype=dtype)]
    for i, rate in enumerate(rates, start=1):
        branches.append(conv_bn_relu(x, channels, 3, f"{name}_b{i}", dilation=rate, dtype=dtype))
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool", dtype=dtype)(x)
    pooled = conv_bn_relu(pooled, channels, 1, f"{name}_b{len(rates) + 1}", dtype=dtype)
    branches.append(ResizeLike(name=f"{name}_pool_resize", dtype=dtype)([pooled, x]))
    y = keras.layers.Concatenate(name=f"{name}_concat", dtype=dtype)(branches)
    y = conv_bn_relu(y, channels, 1, f"{name}_project", dtype=dtype)
    return keras.layers.Dropout(0.5, name=f"{name}_dropout", dtype=dtype)(y)


def deeplabv3(x, num_classes: int, rates: tuple[int, ...], *, dtype=None):
    y = aspp(x, rates, dtype=dtype)
    y = conv_bn_relu(y, 256, 3, "deeplab_head", dtype=dtype)
    return classifier(y, num_classes, "deeplab_classifier", dtype=dtype)


def deeplabv3plus(high, low, num_classes: int, rates: tuple[int, ...], *, dtype=None):
    y = aspp(high, rates, dtype=dtype)
    y = ResizeLike(name="decoder_upsample", dtype=dtype)([y, low])
    skip = conv_bn_relu(low, 48, 1, "decoder_low", dtype=dtype)
    y = keras.layers.Concatenate(name="decoder_concat", dtype=dtype)([y, skip])
    y = conv_bn_relu(y, 256, 3, "decoder_0", dtype=dtype)
    y = conv_bn_relu(y, 256, 3, "decoder_1", dtype=dtype)
    return classifier(y, num_classes, "decoder_classifier", dtype=dtype)


def unet(levels: list, image, num_classes: int, channels: tuple[int, ...], *, dtype=None):
    """``levels``: feature tensors from the deepest to the shallowest stride; one decoder
    block per entry of ``channels``: upsampled (nearest) to the next level's size and joined
    with it, the block past the shallowest level upsampled to ``image``'s size alone. On
    inputs padded to a multiple of the stride every upsampling is an exact ×2."""
    y, skips = levels[0], levels[1:]
    for i, width in enumerate(channels):
        target = skips[i] if i < len(skips) else image
        y = ResizeLike("nearest", name=f"decoder{i}_upsample", dtype=dtype)([y, target])
        if i < len(skips):
            y = keras.layers.Concatenate(name=f"decoder{i}_concat", dtype=dtype)([y, skips[i]])
        y = conv_bn_relu(y, width, 3, f"decoder{i}_0", dtype=dtype)
        y = conv_bn_relu(y, width, 3, f"decoder{i}_1", dtype=dtype)
    return classifier(y, num_classes, "decoder_classifier", kernel=3, dtype=dtype)


def fpn(levels: list, num_classes: int, pyramid: int = 256, channels: int = 128, *, dtype=None):
    """``levels``: feature tensors from the shallowest (stride 4) to the deepest; each
    coarser map is upsampled to the next finer one's size (×2 on padded inputs)."""
    top = None
    pyramid_maps = []
    for i in reversed(range(len(levels))):
        lateral = keras.layers.Conv2D(pyramid, 1, name=f"fpn_lateral{i}", dtype=dtype)(levels[i])
        if top is not None:
            up = ResizeLike("nearest", name=f"fpn_upsample{i}", dtype=dtype)([top, lateral])
            lateral = keras.layers.Add(name=f"fpn_add{i}", dtype=dtype)([lateral, up])
        top = lateral
        pyramid_maps.insert(0, lateral)
    outputs = []
    for i, p in enumerate(pyramid_maps):
        y = p
        for j in range(max(i, 1)):
            name = f"fpn_seg{i}_{j}"
            y = keras.layers.Conv2D(
                channels, 3, padding="same", use_bias=False, name=f"{name}_conv", dtype=dtype
            )(y)
            y = keras.layers.GroupNormalization(32, name=f"{name}_gn", dtype=dtype)(y)
            y = keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(y)
            if i > 0:  # one level finer per block, down to the stride-4 level
                finer = pyramid_maps[i - 1 - j]
                y = ResizeLike(name=f"{name}_upsample", dtype=dtype)([y, finer])
        outputs.append(y)
    y = keras.layers.Add(name="fpn_merge", dtype=dtype)(outputs) if len(outputs) > 1 else outputs[0]
    y = keras.layers.Dropout(0.2, name="fpn_dropout", dtype=dtype)(y)
    return classifier(y, num_classes, "fpn_classifier", dtype=dtype)
