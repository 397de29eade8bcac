"""Segmentation scores from a confusion matrix accumulated over a whole split, with 255 as
the ignore label: mean IoU, per-class IoU, pixel accuracy and frequency-weighted IoU.

Training reports Keras' own ``MeanIoU`` (``ignore_class=255``), whose running confusion
matrix is the same count; evaluation reads the full figures from the matrix here.
"""

from __future__ import annotations

import keras
import numpy as np

IGNORE = 255  # the label of pixels that count for nothing (object borders, "void")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` counts, rows the truth, columns the prediction; pixels
    labelled ``IGNORE`` are left out. A label outside ``[0, num_classes)`` is an error."""
    t = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(y_pred).reshape(-1).astype(np.int64)
    keep = t != IGNORE
    t, p = t[keep], p[keep]
    bad = t[(t < 0) | (t >= num_classes)]
    if bad.size:
        raise ValueError(
            f"mask label {int(bad[0])} is outside 0..{num_classes - 1} (and not {IGNORE})"
        )
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores(matrix: np.ndarray, class_names: list[str] | None = None) -> dict:
    """``miou``, ``per_class_iou``, ``pixel_accuracy`` and ``fw_iou`` of a confusion matrix.

    A class with no pixel in the truth nor the prediction has no IoU (``None``) and is left
    out of the mean, as torchvision's and mmsegmentation's evaluations do."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    union = m.sum(0) + m.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    total = m.sum()
    freq = m.sum(1) / total if total else np.zeros(len(m))
    present = ~np.isnan(iou)
    names = class_names or [str(i) for i in range(len(m))]
    return {
        "miou": float(np.mean(iou[present])) if present.any() else None,
        "per_class_iou": {
            n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)
        },
        "pixel_accuracy": float(tp.sum() / total) if total else None,
        "fw_iou": float(np.sum(freq[present] * iou[present])) if total else None,
    }


def mean_iou_metric(num_classes: int) -> keras.metrics.MeanIoU:
    """The training metric: Keras' ``MeanIoU`` over logits, 255 ignored."""
    return keras.metrics.MeanIoU(
        num_classes, name="miou", ignore_class=IGNORE, sparse_y_true=True, sparse_y_pred=False
    )
