"""Classification metrics from class probabilities and labels (NumPy only).

Written here rather than taken from scikit-learn, which is a development dependency only:
each is a few lines, and they all read the same confusion matrix.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``m[i, j]``: how many images of true class ``i`` were predicted as ``j``."""
    m = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def per_class(matrix: np.ndarray, class_names: list[str]) -> dict:
    """Precision, recall, F1 and support per class, with macro and weighted averages.

    A class never predicted has precision 0 (and one with no images recall 0), as
    scikit-learn's ``zero_division=0``.
    """
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    classes = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    weights = support / max(int(support.sum()), 1)
    averages = {
        "macro": {
            "precision": float(precision.mean()),
            "recall": float(recall.mean()),
            "f1": float(f1.mean()),
            "support": int(support.sum()),
        },
        "weighted": {
            "precision": float(precision @ weights),
            "recall": float(recall @ weights),
            "f1": float(f1 @ weights),
            "support": int(support.sum()),
        },
    }
    return {"classes": classes, "averages": averages}


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the ``k`` most probable."""
    k = min(k, probs.shape[-1])
    top = np.argpartition(-probs, k - 1, axis=-1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """Expected calibration error over equal-width confidence bins, and the bins themselves.

    ECE = Σ_b (n_b / n) · |accuracy_b − confidence_b|, the confidence being the top
    probability (Guo et al. 2017); the bins feed the reliability diagram.
    """
    confidence = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        acc = float(correct[inside].mean()) if n else None
        conf = float(confidence[inside].mean()) if n else None
        if n:
            ece += n / len(labels) * abs(acc - conf)
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": n,
                "accuracy": acc,
                "confidence": conf,
            }
        )
    return {"ece": float(ece), "bins": rows}


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (plain cross-entropy)."""
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.mean(np.log(picked)))


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
    """Everything ``resnetkit evaluate`` reports, as JSON-ready values."""
    num_classes = len(class_names)
    predicted = probs.argmax(axis=-1)
    matrix = confusion_matrix(labels, predicted, num_classes)
    out = {
        "images": len(labels),
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0,
        "top5_accuracy": top_k_accuracy(probs, labels, 5) if num_classes > 5 else None,
        "nll": nll(probs, labels),
        **per_class(matrix, class_names),
        "calibration": calibration(probs, labels),
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
    }
    return out
