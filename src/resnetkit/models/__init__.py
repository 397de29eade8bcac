"""The ResNet model zoo: build any variant by name, count its parameters and MACs."""

from __future__ import annotations

import inspect
from pathlib import Path

from resnetkit.models.builder import FeatureInfo, ResNet
from resnetkit.models.flops import MacCount, count_macs, count_params
from resnetkit.models.variants import VARIANTS, Variant, get_variant, unknown_name_error

# What create_model accepts: ResNet's own arguments, so the two cannot disagree.
OPTIONS = tuple(
    p
    for p in inspect.signature(ResNet.__init__).parameters
    if p not in ("self", "variant", "kwargs")
)


def list_models(family: str | None = None) -> list[str]:
    """Names of every buildable model, optionally of one family ("cifar", "imagenet", ...)."""
    families = {v.family for v in VARIANTS.values()}
    if family is not None and family not in families:
        raise unknown_name_error("family", family, families)
    return [n for n, v in VARIANTS.items() if family is None or v.family == family]


def create_model(name: str, weights: str | Path | None = None, **options) -> ResNet:
    """Build the zoo model ``name``; ``options`` are those of ``ResNet`` (see its docstring).

    ``weights``: a registry name (``resnetkit weights list``) or a weights file (.h5,
    .pth, .safetensors, .npz). A registry entry also sets the model's preprocessing.
    """
    for key in options:
        if key not in OPTIONS:
            raise unknown_name_error("option", key, OPTIONS)
    if weights is None:
        return ResNet(name, **options)

    from resnetkit.weights import REGISTRY, load_weights

    if isinstance(weights, str) and weights in REGISTRY:
        options.setdefault("preprocessing", REGISTRY[weights].preprocessing.to_dict())
    model = ResNet(name, **options)
    load_weights(model, weights)
    return model


__all__ = [
    "VARIANTS",
    "FeatureInfo",
    "MacCount",
    "ResNet",
    "Variant",
    "count_macs",
    "count_params",
    "create_model",
    "get_variant",
    "list_models",
]
