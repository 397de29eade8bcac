"""Grad-CAM explanations: where in an image a classifier finds the evidence for a class.

``explain`` computes heatmaps (Grad-CAM or Grad-CAM++) for uint8 images, ``overlay`` draws
one over its image, ``explanation_grid`` draws several as a titled figure, and
``explain_files`` does all of it for image files (``resnetkit explain``).

The names are loaded on first use, so that ``methods.py`` (the CLI's choices) imports
without TensorFlow.
"""

from __future__ import annotations

from resnetkit.lazy import lazy_exports

_PUBLIC = {
    "METHODS": "resnetkit.explain.methods",
    "Explanation": "resnetkit.explain.gradcam",
    "GradCam": "resnetkit.explain.gradcam",
    "class_index_by_name": "resnetkit.explain.gradcam",
    "explain": "resnetkit.explain.gradcam",
    "feature_layer": "resnetkit.explain.gradcam",
    "ExplainFilesResult": "resnetkit.explain.render",
    "explain_files": "resnetkit.explain.render",
    "explanation_grid": "resnetkit.explain.render",
    "overlay": "resnetkit.explain.render",
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_exports(__name__, _PUBLIC)
