"""mIoU and friends against a direct computation with scikit-learn's confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from resnetkit.tasks.segment.metrics import IGNORE, confusion, mean_iou_metric, scores


def _masks(seed: int, classes: int = 5):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, size=(3, 17, 23))
    truth[rng.random(truth.shape) < 0.1] = IGNORE
    pred = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, classes, truth.shape))
    pred[pred == IGNORE] = 0
    return truth, pred


def test_scores_equal_a_direct_computation_with_scikit_learn():
    truth, pred = _masks(0)
    keep = truth != IGNORE
    reference = confusion_matrix(truth[keep], pred[keep], labels=range(5))
    matrix = confusion(truth, pred, 5)
    np.testing.assert_array_equal(matrix, reference)
    got = scores(matrix, ["a", "b", "c", "d", "e"])
    tp = np.diag(reference)
    iou = tp / (reference.sum(0) + reference.sum(1) - tp)
    assert got["miou"] == pytest.approx(iou.mean())
    assert list(got["per_class_iou"].values()) == pytest.approx(list(iou))
    assert got["pixel_accuracy"] == pytest.approx(tp.sum() / keep.sum())
    freq = reference.sum(1) / reference.sum()
    assert got["fw_iou"] == pytest.approx(float((freq * iou).sum()))


def test_a_class_absent_from_truth_and_prediction_is_left_out_of_the_mean():
    truth = np.array([[0, 0, 1, IGNORE]])
    pred = np.array([[0, 1, 1, 2]])  # the ignored pixel's prediction does not count
    got = scores(confusion(truth, pred, 3))
    assert got["per_class_iou"] == {"0": 0.5, "1": 0.5, "2": None}
    assert got["miou"] == 0.5 and got["pixel_accuracy"] == pytest.approx(2 / 3)


def test_a_label_outside_the_classes_is_named():
    with pytest.raises(ValueError, match=r"mask label 7 is outside 0\.\.4"):
        confusion(np.array([1, 7]), np.array([1, 1]), 5)


def test_the_keras_training_metric_counts_the_same_matrix():
    truth, pred = _masks(1)
    logits = np.eye(5, dtype="float32")[pred] * 3.0
    metric = mean_iou_metric(5)
    metric.update_state(truth, logits)
    np.testing.assert_array_equal(np.asarray(metric.total_cm), confusion(truth, pred, 5))
    assert float(metric.result()) == pytest.approx(scores(confusion(truth, pred, 5))["miou"])
