"""The cache folder shared by the zoo table, weights and data sets."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$RESNETKIT_CACHE`` (default ``~/.cache/resnetkit``), joined with ``parts``."""
    root = Path(os.environ.get("RESNETKIT_CACHE", Path.home() / ".cache" / "resnetkit"))
    return root.joinpath(*parts)
