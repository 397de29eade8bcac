"""The original article's network, with the article's own function signatures.

The article builds its ResNet from two functions::

    residual_block(input_tensor, filters)   # conv-BN-ReLU-conv-BN, add the input
    resnet_model(input_shape, num_classes)  # 7×7/2 stem, max-pool, 10 blocks, GAP, softmax

Both are kept here as the article wrote their interface, implemented through resnetkit's
one builder (the zoo's ``seed`` variant), so the article's code and the zoo cannot drift
apart. As in the article's code, no ReLU follows the addition; its diagram shows one, and
``post_add_relu=True`` gives that corrected network.

Notation: the article writes F(x) = H(x) + x with H the two-layer stack; He et al. write
H(x) = F(x) + x with F the residual. Same idea, swapped letters.
"""

from __future__ import annotations

import keras

from resnetkit.models.blocks import branch_convs
from resnetkit.models.blocks import residual_block as _residual_block
from resnetkit.models.builder import ResNet
from resnetkit.models.layout import SEED, LayerFactory


def residual_block(input_tensor, filters: int, post_add_relu: bool = False):
    """The article's block: two 3×3 convs (with bias) and BNs, plus the input.

    ``input_tensor`` must already have ``filters`` channels (the article's network keeps 64
    throughout). Layers get Keras' automatic names, so the block can be called repeatedly.
    """
    if input_tensor.shape[-1] != filters:
        raise ValueError(
            f"residual_block adds its input unchanged, so the input must have filters={filters} "
            f"channels; got {input_tensor.shape[-1]}"
        )
    return _residual_block(
        input_tensor,
        branch_convs("basic", filters, filters, 1),
        LayerFactory(SEED),
        lambda role: None,
        post_add_relu=post_add_relu,
    )


def resnet_model(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 10,
    post_add_relu: bool = False,
) -> keras.Model:
    """The article's full network, ending in softmax as in the article."""
    return ResNet(
        "seed",
        num_classes=num_classes,
        input_shape=input_shape,
        classifier_activation="softmax",
        post_add_relu=post_add_relu,
    )
