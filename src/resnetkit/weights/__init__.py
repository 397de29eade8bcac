"""Pretrained weights: the registry, safe file reading, and strict loading by name."""

from resnetkit.weights.io import ChecksumMismatch, WeightsUnavailable, fetch_file, read_state_dict
from resnetkit.weights.load import LoadReport, load_weights
from resnetkit.weights.specs import (
    REGISTRY,
    Preprocessing,
    WeightSpec,
    get_weight_spec,
    imagenet_classes,
)
from resnetkit.weights.torch_state import from_keras as torch_state_dict

__all__ = [
    "REGISTRY",
    "ChecksumMismatch",
    "LoadReport",
    "Preprocessing",
    "WeightSpec",
    "WeightsUnavailable",
    "fetch_file",
    "get_weight_spec",
    "imagenet_classes",
    "load_weights",
    "read_state_dict",
    "torch_state_dict",
]
