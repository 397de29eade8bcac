"""Load pretrained weights into a resnetkit model, strictly and by name.

Every source — a registry name, a keras.applications ``.h5``, a torchvision/timm ``.pth`` or
``.safetensors`` — is first turned into ``{"layer/weight": array}`` and then goes through
``assign``, the one place that matches names and checks shapes. Two mismatches are
adaptations, reported and never silent:

- a classifier of another size (or none in the file): the head keeps its fresh
  initialization and a warning says so;
- a first convolution for another channel count: ``adapt.adapt_input_conv``.

Anything else missing, unexpected or mis-shaped raises a ``ValueError`` that lists it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from resnetkit.download import fetch_file
from resnetkit.weights.adapt import adapt_input_conv
from resnetkit.weights.io import read_state_dict
from resnetkit.weights.keras_apps import read_keras_h5
from resnetkit.weights.specs import REGISTRY, WeightSpec, get_weight_spec
from resnetkit.weights.torch_state import to_keras

log = logging.getLogger("resnetkit")

WEIGHT_FILE_SUFFIXES = (".h5", ".hdf5", ".pth", ".pt", ".bin", ".safetensors", ".npz")


@dataclass
class LoadReport:
    """What a load did: weights assigned, and what was adapted or left out."""

    source: str
    assigned: int = 0
    notes: list[str] = field(default_factory=list)


def resolve(source: str | Path, model) -> tuple[Path, str, WeightSpec | None]:
    """(local file, format, registry entry) for a registry name or a file path."""
    if isinstance(source, str) and source in REGISTRY:
        spec = get_weight_spec(source)
        if spec.arch != model.variant.name:
            raise ValueError(
                f"weights {source!r} are for {spec.arch!r}, not {model.variant.name!r}; "
                f"use create_model({spec.arch!r}, weights={source!r})"
            )
        wants_head = _has_head(model) and _num_classes(model) == 1000
        return fetch_file(spec.file_for(include_top=wants_head)), spec.format, spec
    path = Path(source)
    if not path.exists():
        check_registry_name(source)
        raise FileNotFoundError(f"weights file not found: {path}")
    return path, file_format(path), None


def file_format(path: Path) -> str:
    """``keras_h5`` for Keras' .h5 files, ``torch`` for state dicts (.pth, .safetensors, ...)."""
    return "keras_h5" if Path(path).suffix.lower() in (".h5", ".hdf5") else "torch"


def check_registry_name(source: str | Path) -> None:
    """A missing ``source`` that does not look like a file name (no weights suffix, no
    folder) is a mistyped registry name: raise the registry's error, which lists the
    nearest names. Anything else returns, for the caller's file-not-found error."""
    path = Path(source)
    if path.suffix.lower() not in WEIGHT_FILE_SUFFIXES and len(path.parts) == 1:
        get_weight_spec(str(source))


def load_weights(model, source: str | Path, *, new_head: bool = False) -> LoadReport:
    """Load ``source`` (registry name or file) into ``model`` and report what happened.

    ``new_head``: keep the model's freshly initialized classifier (fine-tuning).
    """
    if not hasattr(model, "variant"):
        raise TypeError(
            f"load_weights needs a resnetkit model (create_model); got {type(model).__name__}"
        )
    path, fmt, _ = resolve(source, model)
    if fmt == "keras_h5":
        arrays, unknown = read_keras_h5(path), []
    else:
        arrays, unknown = to_keras(read_state_dict(path), model.variant)
    return assign(model, arrays, source=str(path), unknown=unknown, new_head=new_head)


def assign(
    model, arrays: dict[str, np.ndarray], *, source: str, unknown=(), new_head: bool = False
) -> LoadReport:
    """Assign ``{"layer/weight": array}`` to ``model``'s weights by name, checking shapes.

    ``new_head``: leave the model's classifier as initialized (fine-tuning to a new task).
    """
    report = LoadReport(source)
    targets = {w.path: w for w in model.weights}
    arrays = dict(arrays)
    head = head_layer(model)
    if new_head:
        arrays = {k: v for k, v in arrays.items() if k.split("/")[0] != head}
        if any(k.split("/")[0] == head for k in targets):  # a backbone has no classifier
            report.notes.append(f"new classifier {head!r} for {_num_classes(model)} classes")
        targets = {k: v for k, v in targets.items() if k.split("/")[0] != head}
    head_in_file = sorted(k for k in arrays if k.split("/")[0] == head)
    head_in_model = sorted(k for k in targets if k.split("/")[0] == head)

    if head_in_file and not head_in_model:
        for k in head_in_file:
            arrays.pop(k)
        report.notes.append("the file's classifier was not used (model built without a top)")
    elif head_in_model:
        fits = head_in_file == head_in_model and all(
            arrays[k].shape == tuple(targets[k].shape) for k in head_in_model
        )
        if not fits:
            found = arrays.get(f"{head}/bias")
            classes = "no classifier" if found is None else f"{found.shape[0]} classes"
            for k in head_in_file:
                arrays.pop(k)
            note = (
                f"classifier {head!r} re-initialized: the weights have {classes}, "
                f"the model has {_num_classes(model)}"
            )
            report.notes.append(note)
            log.warning("%s: %s", Path(source).name, note)
            targets = {k: v for k, v in targets.items() if k not in head_in_model}

    first = _first_conv_kernel(model)
    if first in arrays and first in targets:
        src, dst = arrays[first].shape, tuple(targets[first].shape)
        if src[:2] + src[3:] == dst[:2] + dst[3:] and src[2] != dst[2]:
            arrays[first] = adapt_input_conv(arrays[first], dst[2])
            note = f"first convolution adapted from {src[2]} to {dst[2]} input channels"
            report.notes.append(note)
            log.info("%s: %s", Path(source).name, note)

    missing = sorted(k for k in targets if k not in arrays)
    unexpected = sorted([*unknown, *(k for k in arrays if k not in targets)])
    mismatched = sorted(
        f"{k}: file {arrays[k].shape} vs model {tuple(targets[k].shape)}"
        for k in targets
        if k in arrays and arrays[k].shape != tuple(targets[k].shape)
    )
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{source} does not fit {model.name!r}:"
            + _listing("missing in the file", missing)
            + _listing("not in the model", unexpected)
            + _listing("shape mismatch", mismatched)
        )
    for key, variable in targets.items():
        variable.assign(arrays[key].astype(variable.dtype))
    report.assigned = len(targets)
    return report


def _listing(title: str, items: list[str], limit: int = 12) -> str:
    if not items:
        return ""
    shown = "\n    ".join(items[:limit])
    more = f"\n    … and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {title} ({len(items)}):\n    {shown}{more}"


def head_layer(model) -> str:
    from resnetkit.models.layout import LAYOUTS

    spec = model.variant if hasattr(model, "variant") else model.backbone.variant  # a task's
    return LAYOUTS[spec.layout].top("head_fc")


def _has_head(model) -> bool:
    return any(layer.name == head_layer(model) for layer in model.layers)


def _num_classes(model) -> int | None:
    return model.get_config().get("num_classes") if _has_head(model) else None


def _first_conv_kernel(model) -> str | None:
    for layer in model._flatten_layers(include_self=False):  # into a nested backbone too
        if isinstance(layer, keras.layers.Conv2D):
            return f"{layer.name}/kernel"
    return None
