"""Getting weight files safely: download into the cache with checksum, read without pickle.

- Downloads stream into a temporary file beside the target, are hashed on the way, and are
  renamed into place only when the checksum matches: the cache never holds a partial or
  unverified file.
- Without network, the error names the URL that failed and the exact path to put the file.
- Reading never runs code from a file: ``.safetensors`` through the safetensors package,
  ``.pth`` only through ``torch.load(weights_only=True)``, ``.npz`` with
  ``allow_pickle=False``, Keras ``.h5`` through h5py.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from resnetkit.cache import cache_dir, temporary_sibling
from resnetkit.weights.specs import FileRef

CHUNK = 1 << 20


class WeightsUnavailable(RuntimeError):
    """A weight file could not be downloaded; the message says where to place it by hand."""


class ChecksumMismatch(ValueError):
    """A file's digest differs from the published one; the file was not kept."""


def weights_dir() -> Path:
    return cache_dir("weights")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, ref: FileRef) -> None:
    """Raise ``ChecksumMismatch`` unless ``path``'s digest starts with ``ref.checksum``."""
    actual = file_digest(path, ref.algorithm)
    if not actual.startswith(ref.checksum.lower()):
        raise ChecksumMismatch(
            f"{path.name}: {ref.algorithm} is {actual}, expected {ref.checksum} "
            f"(published for {ref.url}); the file was refused and removed"
        )


def fetch_file(ref: FileRef, *, timeout: float = 30.0) -> Path:
    """The verified local copy of ``ref``: from the cache, or downloaded into it."""
    target = weights_dir() / ref.filename
    if target.exists():
        try:
            verify(target, ref)
        except ChecksumMismatch:
            target.unlink()  # a damaged or wrong file must not stay in the cache
            raise
        return target
    tmp = temporary_sibling(target)
    try:
        digest = hashlib.new(ref.algorithm)
        with urllib.request.urlopen(ref.url, timeout=timeout) as response, open(tmp, "wb") as out:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if not actual.startswith(ref.checksum.lower()):
            raise ChecksumMismatch(
                f"download of {ref.url} has {ref.algorithm} {actual}, expected {ref.checksum}; "
                "nothing was kept"
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsUnavailable(
            f"could not download {ref.url} ({reason}).\n"
            f"Download it elsewhere and place it at:\n  {target}\n"
            f"({ref.algorithm} must start with {ref.checksum}); resnetkit verifies it on first use."
        ) from e
    finally:
        tmp.unlink(missing_ok=True)
    return target


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
