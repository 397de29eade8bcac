"""TensorFlow's start-up chatter, kept out of a command's output unless the user asks.

Importing TensorFlow prints, before a command prints anything:

- ``This TensorFlow binary is optimized to use available CPU instructions …`` (two lines)
  through TensorFlow's own logging, which ``TF_CPP_MIN_LOG_LEVEL=1`` or higher silences;
- ``WARNING: All log messages before absl::InitializeLog() is called are written to
  STDERR`` and ``I0000 … port.cc:…] oneDNN custom operations are on …``, once per
  TensorFlow library that loads (twice). Abseil writes these straight to file descriptor 2
  before its logging is set up, so no ``TF_CPP_MIN_LOG_LEVEL`` silences them.

The CLI therefore sets ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it) and, while
TensorFlow is first imported, passes file descriptor 2 through a filter that drops the
Abseil lines below that level; every other line passes. ``-v`` sets the level to 0 and
filters nothing.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

QUIET_LEVEL = 2  # TensorFlow's: 1 hides INFO, 2 also WARNING, 3 also ERROR
ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called"
# An Abseil record: severity letter, MMDD, time (seconds since 1970 before set-up), thread
# id, file:line]
ABSL_RECORD = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keep TensorFlow's info and warning logs out of this process's stderr.

    Call before TensorFlow is imported. ``verbose``: show everything instead. A
    ``TF_CPP_MIN_LOG_LEVEL`` in the environment is the user's choice and is kept.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    level = _level(os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", str(QUIET_LEVEL)))
    if level == 0 or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _FilteredImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _FilteredImport(level))


def _level(text: str) -> int:
    try:
        return max(0, int(text))
    except ValueError:  # TensorFlow reads an unparsable level as 0
        return 0


def is_chatter(line: str, level: int) -> bool:
    """Whether ``line`` is an Abseil start-up line that ``level`` hides."""
    if line.startswith(ABSL_NOTICE):
        return level >= 1
    record = ABSL_RECORD.match(line)
    return record is not None and SEVERITY[record.group(1)] < level


@contextlib.contextmanager
def filtered_stderr(level: int) -> Iterator[None]:
    """File descriptor 2 through ``is_chatter`` while the block runs (C++ writes too)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_chatter(line, level))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _FilteredImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, and has its import run under ``filtered_stderr``."""

    def __init__(self, level: int):
        self.level = level

    def find_spec(
        self, name: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and the real finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, self.level)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, level: int):
        self.loader, self.level = loader, level

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its own
        with filtered_stderr(self.level):
            self.loader.exec_module(module)
