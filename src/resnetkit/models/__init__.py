"""The ResNet model zoo: build any variant by name, count its parameters and MACs."""

from __future__ import annotations

import inspect
from pathlib import Path

import keras

from resnetkit.models.builder import FeatureInfo, ResNet
from resnetkit.models.flops import MacCount, count_macs, count_params
from resnetkit.models.variants import VARIANTS, Variant, get_variant
from resnetkit.names import unknown_name_error

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


def create_model(name: str, **options) -> ResNet:
    """Build the zoo model ``name`` with random weights; ``options`` are those of ``ResNet``
    (see its docstring). Pretrained weights: ``resnetkit.create_model(name, weights=...)``
    (``resnetkit.weights.create_model``), which builds through this function."""
    if "weights" in options:
        raise ValueError(
            "resnetkit.models.create_model builds random weights; load pretrained ones with "
            "resnetkit.create_model(name, weights=...)"
        )
    for key in options:
        if key not in OPTIONS:
            raise unknown_name_error("option", key, OPTIONS)
    return ResNet(name, **options)


def load_model(path: str | Path) -> keras.Model:
    """A resnetkit model from a ``.keras`` file or a run directory (its saved model),
    loaded in Keras' safe mode (no code in the file is run) and uncompiled.

    Importing this module registers resnetkit's layers with Keras, which a plain
    ``keras.saving.load_model`` needs; errors name the file at fault."""
    from resnetkit.rundir import RunDir

    path = Path(path)
    if path.is_dir():
        path = RunDir(path).require_model()
    elif not path.is_file():
        raise FileNotFoundError(f"model not found: {path} (a .keras file or a run directory)")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras model file or a run directory")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises many kinds; name the file at fault
        raise ValueError(f"{path}: cannot be loaded as a Keras model: {e}") from e


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
    "load_model",
]
