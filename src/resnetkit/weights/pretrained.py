"""``create_model(name, weights=...)``: a zoo model with pretrained weights loaded."""

from __future__ import annotations

from pathlib import Path

from resnetkit.models import ResNet
from resnetkit.models import create_model as build_model
from resnetkit.weights.load import load_weights
from resnetkit.weights.specs import REGISTRY


def create_model(name: str, weights: str | Path | None = None, **options) -> ResNet:
    """Build the zoo model ``name``; ``options`` are those of ``ResNet`` (see its docstring).

    ``weights``: a registry name (``resnetkit weights list``) or a weights file (.h5,
    .pth, .safetensors, .npz); None keeps the random initialization. A registry entry also
    sets the model's preprocessing.
    """
    if weights is None:
        return build_model(name, **options)
    if isinstance(weights, str) and weights in REGISTRY:
        options.setdefault("preprocessing", REGISTRY[weights].preprocessing.to_dict())
    model = build_model(name, **options)
    load_weights(model, weights)
    return model
