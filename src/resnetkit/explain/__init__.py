"""Grad-CAM explanations: where in an image a classifier finds the evidence for a class.

``explain`` computes heatmaps (Grad-CAM or Grad-CAM++) for uint8 images, ``overlay`` draws
one over its image, ``explanation_grid`` draws several as a titled figure, and
``explain_files`` does all of it for image files (``resnetkit explain``).
"""

from resnetkit.explain.gradcam import (
    METHODS,
    Explanation,
    GradCam,
    class_index_by_name,
    explain,
    feature_layer,
)
from resnetkit.explain.render import ExplainFilesResult, explain_files, explanation_grid, overlay

__all__ = [
    "METHODS",
    "ExplainFilesResult",
    "Explanation",
    "GradCam",
    "class_index_by_name",
    "explain",
    "explain_files",
    "explanation_grid",
    "feature_layer",
    "overlay",
]
