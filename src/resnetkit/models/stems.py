"""Stems: the layers before the first residual stage.

- ``"cifar"``: 3×3 conv, stride 1 (He et al. §4.2; Wide ResNets).
- ``"cifar_s2"``: the same conv with stride 2: small images (28×28) start at half
  resolution, which drops the costliest full-resolution stage (the fast Fashion-MNIST model).
- ``"imagenet"``: 7×7 conv, stride 2, then 3×3 max-pool, stride 2.
- ``"deep"``: three 3×3 convs (32-32-64), the first with stride 2, then the max-pool
  (ResNet-C/D of Bag of Tricks, timm's ``*d`` models).
- ``"seed"``: the original article's stem: 7×7/2 conv with bias and Keras ``"same"``
  padding, BN, ReLU, 3×3/2 max-pool with ``"valid"`` padding.

Pre-activation networks leave BN and ReLU out of the stem (the first block starts with them).
Each stem returns ``(output, stem_feature, stride_of_stem_feature, stride_of_output)``; the
stem feature is the last full-resolution activation before the pool.
"""

from __future__ import annotations

import keras

from resnetkit.models.layout import LayerFactory

STEMS = ("cifar", "cifar_s2", "imagenet", "deep", "seed")


# Input pixels per pixel of each stem's output (what ``apply_stem`` returns last).
STEM_STRIDES = {"seed": 4, "cifar": 1, "cifar_s2": 2, "imagenet": 4, "deep": 4}


def apply_stem(x, stem: str, width: int, make: LayerFactory, *, preact: bool):
    top = make.layout.top
    if stem == "seed":
        x = make.conv(
            x, width, 7, strides=2, padding="same", name=top("stem_conv"), role="stem_conv"
        )
        x = make.relu(make.bn(x, name=top("stem_bn")), name=top("stem_relu"))
        feature = x
        x = keras.layers.MaxPooling2D(3, 2, name=top("stem_pool"), dtype=make.dtype)(x)
        return x, feature, 2, 4

    if stem in ("cifar", "cifar_s2"):
        stride = 2 if stem == "cifar_s2" else 1
        x = make.conv(
            x,
            width,
            3,
            strides=stride,
            name=top("stem_conv"),
            pad_name=top("stem_pad"),
            role="stem_conv",
        )
        if not preact:
            x = make.relu(make.bn(x, name=top("stem_bn")), name=top("stem_relu"))
        return x, x, stride, stride

    if stem == "imagenet":
        x = make.conv(
            x,
            width,
            7,
            strides=2,
            name=top("stem_conv"),
            pad_name=top("stem_pad"),
            role="stem_conv",
        )
        if not preact:
            x = make.relu(make.bn(x, name=top("stem_bn")), name=top("stem_relu"))
    elif stem == "deep":
        widths = (width // 2, width // 2, width)
        for i, w in enumerate(widths, start=1):
            x = make.conv(
                x,
                w,
                3,
                strides=2 if i == 1 else 1,
                name=top(f"stem_conv{i}"),
                pad_name=top(f"stem_pad{i}"),
                role="stem_conv",
            )
            if not preact or i < len(widths):
                x = make.relu(make.bn(x, name=top(f"stem_bn{i}")), name=top(f"stem_relu{i}"))
    else:
        raise ValueError(f"unknown stem {stem!r}; expected one of {', '.join(STEMS)}")
    feature = x
    x = make.max_pool(x, name=top("stem_pool"), pad_name=top("stem_pool_pad"))
    return x, feature, 2, 4
