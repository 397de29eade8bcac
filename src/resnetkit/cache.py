"""The cache folder and atomic file writes, shared by the zoo table, weights and data sets."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$RESNETKIT_CACHE`` (default ``~/.cache/resnetkit``), joined with ``parts``."""
    root = Path(os.environ.get("RESNETKIT_CACHE", Path.home() / ".cache" / "resnetkit"))
    return root.joinpath(*parts)


def temporary_sibling(path: Path) -> Path:
    """A fresh temporary file beside ``path``, to be renamed onto it once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = temporary_sibling(path)
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
