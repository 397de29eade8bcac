"""Export trained models with Keras' own exporters, check them, and use the artifacts.

- ``export_model``: SavedModel, ONNX, LiteRT (float32 or int8) or .keras, BatchNorm folded,
  optionally with the preprocessing inside the graph, parity-checked in its own runtime,
  with ``labels.txt`` and ``model_card.json`` beside it (export.py).
- ``inference_model``: the float32, BatchNorm-folded copy of a model (fold.py).
- ``load_artifact``: an exported artifact as a classifier for ``predict`` and ``serve``
  (artifacts.py).
"""

from resnetkit.export.artifacts import ArtifactClassifier, is_export, load_artifact
from resnetkit.export.export import FORMATS, ExportResult, ParityError, export_model
from resnetkit.export.fold import FoldReport, inference_model

__all__ = [
    "FORMATS",
    "ArtifactClassifier",
    "ExportResult",
    "FoldReport",
    "ParityError",
    "export_model",
    "inference_model",
    "is_export",
    "load_artifact",
]
