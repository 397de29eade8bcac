"""Atomic writes: readers see the old file or the whole new one, never half of it.

Every file resnetkit writes that another process may read (run files, charts, exports,
downloads, caches) is written through ``atomic_path`` or ``write_atomic``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh temporary file beside ``path`` (same file system), to be renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on
    any error it is removed. ``suffix``: what the writer needs the name to end with
    (Keras' ``save`` wants ``.keras``)."""
    path = Path(path)
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf8") if isinstance(data, str) else data)


def save_study(out: str | Path | None, result: dict, json_name: str, chart, png_name: str) -> None:
    """An analysis' figures as ``out/json_name`` and its chart as ``out/png_name`` (both
    atomically); nothing when ``out`` is None."""
    if out is None:
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / json_name, json.dumps(result, indent=1))
    chart(result, out / png_name)
