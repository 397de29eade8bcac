"""Pretrained weights: the registry, safe file reading, and strict loading by name."""

from resnetkit.download import ChecksumMismatch, DownloadUnavailable, fetch_file
from resnetkit.weights.io import read_state_dict
from resnetkit.weights.load import LoadReport, load_weights
from resnetkit.weights.pretrained import create_model
from resnetkit.weights.specs import (
    REGISTRY,
    WeightSpec,
    get_weight_spec,
    imagenet_classes,
)
from resnetkit.weights.torch_state import from_keras as torch_state_dict

__all__ = [
    "REGISTRY",
    "ChecksumMismatch",
    "DownloadUnavailable",
    "LoadReport",
    "WeightSpec",
    "create_model",
    "fetch_file",
    "get_weight_spec",
    "imagenet_classes",
    "load_weights",
    "read_state_dict",
    "torch_state_dict",
]
