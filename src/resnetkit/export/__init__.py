"""Export trained models with Keras' own exporters, check them, and use the artifacts.

- ``export_model``: SavedModel, ONNX, LiteRT (float32 or int8) or .keras, BatchNorm folded,
  optionally with the preprocessing inside the graph, parity-checked in its own runtime,
  with ``labels.txt`` and ``model_card.json`` beside it (export.py).
- ``inference_model``: the float32, BatchNorm-folded copy of a model (fold.py).
- ``load_artifact``: an exported artifact as a classifier for ``predict`` and ``serve``
  (artifacts.py).

The names are loaded on first use, so that a TF-free module of the package (runtimes.py,
card.py) can be imported without TensorFlow.
"""

from __future__ import annotations

from resnetkit.lazy import lazy_exports

_PUBLIC = {
    "ArtifactClassifier": "resnetkit.export.artifacts",
    "is_export": "resnetkit.export.artifacts",
    "load_artifact": "resnetkit.export.artifacts",
    "FORMATS": "resnetkit.export.export",
    "ExportResult": "resnetkit.export.export",
    "ParityError": "resnetkit.export.export",
    "export_model": "resnetkit.export.export",
    "FoldReport": "resnetkit.export.fold",
    "inference_model": "resnetkit.export.fold",
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_exports(__name__, _PUBLIC)
