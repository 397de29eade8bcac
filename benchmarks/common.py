"""What every benchmark records beside its figures: library versions and hardware."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in (
        "resnetkit",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "torch",
        "torchvision",
        "pillow",
        "numpy",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def hardware() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine()}
