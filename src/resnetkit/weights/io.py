"""Reading weight files without running code from them.

Reading never runs code from a file: ``.safetensors`` through the safetensors package,
  ``.pth`` only through ``torch.load(weights_only=True)``, ``.npz`` with
  ``allow_pickle=False``, Keras ``.h5`` through h5py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A PyTorch-style state dict from ``.safetensors``, ``.pth``/``.pt``/``.bin`` or ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        return load_file(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if suffix in (".pth", ".pt", ".bin"):
        return _read_torch(path)
    raise ValueError(
        f"{path}: unsupported weights format {suffix!r}; expected .safetensors, .pth, .pt, "
        ".bin, .npz (state dicts) or .h5 (Keras)"
    )


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"{path}: reading .pth files needs PyTorch (pip install torch); or convert the file "
            "to .safetensors, which resnetkit reads without torch"
        ) from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError (or RuntimeError) for unsafe content
        raise ValueError(
            f"{path}: refused to load: the file is not a plain tensor state dict "
            f"(torch.load with weights_only=True said: {str(e).splitlines()[0]})"
        ) from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # training checkpoints nest it
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    return {
        k: (v.float() if v.is_floating_point() else v).detach().cpu().numpy()
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
    }
