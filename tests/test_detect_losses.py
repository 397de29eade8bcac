"""RetinaNet's matching, targets and loss against hand cases and NumPy (the interop tier
compares them with torchvision's own)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from resnetkit.tasks.detect import boxes
from resnetkit.tasks.detect.losses import retinanet_loss
from resnetkit.tasks.detect.targets import BACKGROUND, IGNORED, encode_targets, match

ANCHORS = tf.constant(
    [[0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 22], [50, 50, 60, 60], [100, 100, 120, 120]],
    tf.float32,
)
TRUTH = tf.constant([[0, 0, 10, 10], [100, 100, 140, 140]], tf.float32)


def test_matching_thresholds_and_the_low_quality_rule():
    got = match(TRUTH, ANCHORS).numpy()
    # IoU 1 and 0.5: matched; 0.45: ignored; 0: background; 0.25, but box 1's best: kept.
    assert got.tolist() == [0, 0, IGNORED, BACKGROUND, 1]
    assert match(tf.zeros((0, 4)), ANCHORS).numpy().tolist() == [BACKGROUND] * 5


def test_targets_encode_the_matched_boxes():
    t = encode_targets(TRUTH, tf.constant([4, 9]), ANCHORS)
    assert t["classes"].numpy().tolist() == [4, 4, IGNORED, BACKGROUND, 9]
    expected = boxes.encode(TRUTH.numpy()[[0, 0, 1]], ANCHORS.numpy()[[0, 1, 4]])
    np.testing.assert_allclose(t["boxes"].numpy()[[0, 1, 4]], expected, atol=1e-6)
    assert not t["boxes"].numpy()[[2, 3]].any()


def _numpy_focal(classes, logits, alpha=0.25, gamma=2.0):
    k = logits.shape[-1]
    onehot = np.eye(k)[np.maximum(classes, 0)] * (classes >= 0)[..., None]
    p = 1 / (1 + np.exp(-logits))
    ce = -(onehot * np.log(p) + (1 - onehot) * np.log(1 - p))
    p_t = p * onehot + (1 - p) * (1 - onehot)
    loss = (alpha * onehot + (1 - alpha) * (1 - onehot)) * ce * (1 - p_t) ** gamma
    return (loss * (classes != IGNORED)[..., None]).sum((1, 2))


@pytest.mark.parametrize("box", ["l1", "giou"])
def test_the_loss_is_the_formula_and_finite_without_objects(box):
    rng = np.random.default_rng(0)
    classes = np.array([[2, BACKGROUND, IGNORED, 0, BACKGROUND],
                        [BACKGROUND] * 5], np.int32)  # fmt: skip
    logits = rng.normal(size=(2, 5, 3)).astype(np.float32)
    deltas = rng.normal(scale=0.1, size=(2, 5, 4)).astype(np.float32)
    target = rng.normal(scale=0.1, size=(2, 5, 4)).astype(np.float32)
    outputs = {"cls_logits": tf.constant(logits), "bbox_regression": tf.constant(deltas)}
    targets = {"classes": tf.constant(classes), "boxes": tf.constant(target)}
    total, parts = retinanet_loss(targets, outputs, ANCHORS, box=box)
    matched = np.maximum((classes >= 0).sum(1), 1)
    focal = (_numpy_focal(classes, logits) / matched).mean()
    assert float(parts["classification"]) == pytest.approx(focal, rel=1e-5)
    if box == "l1":
        l1 = (np.abs(deltas - target).sum(-1) * (classes >= 0)).sum(1) / matched
        assert float(parts["box"]) == pytest.approx(l1.mean(), rel=1e-5)
    assert np.isfinite(float(total)) and float(parts["box"]) > 0
    empty = {k: v[1:] for k, v in targets.items()}
    alone, _ = retinanet_loss(empty, {k: v[1:] for k, v in outputs.items()}, ANCHORS, box=box)
    assert np.isfinite(float(alone)) and float(alone) > 0  # background only: still learns
    with pytest.raises(ValueError, match="box loss must be one of l1, giou"):
        retinanet_loss(targets, outputs, ANCHORS, box="smooth")
