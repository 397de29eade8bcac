"""``versions()``: what produced a figure or a file, recorded beside it (runs, exports,
benchmarks all call this one function)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

# Libraries whose versions decide what a run, an export or a benchmark computes.
LIBRARIES = (
    "resnetkit",
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "numpy",
    "pillow",
    "onnx",
    "tf2onnx",
    "onnxruntime",
    "ai-edge-litert",
    "torch",
    "torchvision",
    "timm",
)


def versions(libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """Installed versions of ``libraries`` (absent ones left out), Python, the machine's
    architecture and core count, and whether TensorFlow runs its oneDNN kernels."""
    out: dict = {}
    for name in libraries:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["python"] = platform.python_version()
    out["machine"] = platform.machine()
    out["cpus"] = os.cpu_count()
    out["onednn"] = onednn_enabled()
    return out


def onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs its oneDNN kernels (see ``resnetkit/__init__.py``);
    None when TensorFlow is not loaded or does not say. Never imports TensorFlow itself."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
