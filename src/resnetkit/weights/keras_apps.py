"""Read keras.applications' published ``.h5`` weight files by layer name.

The files are in Keras' legacy HDF5 layout: a group per layer, listed in the file attribute
``layer_names``, each with an attribute ``weight_names`` such as ``conv1_conv/kernel:0``.
We read them into ``{"layer/weight": array}`` so that the common loader matches every weight
by name and checks its shape — never by position, which is how Keras' own
``load_weights`` treats legacy files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path: str | Path) -> dict[str, np.ndarray]:
    """``{"layer_name/weight_name": array}`` from a legacy Keras weights file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    arrays: dict[str, np.ndarray] = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from e
    with f:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise ValueError(
                f"{path}: not a keras.applications weights file (no 'layer_names' attribute); "
                "Keras 3 '.weights.h5' files load with model.load_weights"
            )
        for layer in map(_text, root.attrs["layer_names"]):
            group = root[layer]
            for weight in map(_text, group.attrs.get("weight_names", [])):
                leaf = weight.split("/")[-1].split(":")[0]
                arrays[f"{layer}/{leaf}"] = np.asarray(group[weight])
    return arrays
