"""The runtimes that run an exported artifact, named without importing any of them.

``export/artifacts.py`` loads an artifact in one of these; the CLI offers the same tuple as
the choices of ``--runtime``, and ``resnetkit --help`` imports no runtime and no TensorFlow.
"""

from __future__ import annotations

RUNTIMES = ("tensorflow", "onnxruntime", "litert", "keras")
FORMATS = ("savedmodel", "onnx", "litert", "keras")  # what ``resnetkit export`` writes
QUANTIZATIONS = ("int8",)  # LiteRT only
