"""The segmentation loss with class weights and Dice, against a direct NumPy computation,
and a run that trains with both."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import write_voc

from resnetkit.cli import main
from resnetkit.tasks.segment.losses import SegmentationLoss


def _numpy_loss(labels, logits, weights, dice_weight):
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    w = valid * np.asarray(weights)[safe]
    loss = (ce * w).sum() / w.sum()
    probs = np.exp(logp) * valid[..., None]
    truth = np.eye(logits.shape[-1])[safe] * valid[..., None]
    inter, sizes = (probs * truth).sum((0, 1, 2)), probs.sum((0, 1, 2)) + truth.sum((0, 1, 2))
    present = truth.sum((0, 1, 2)) > 0
    dice = ((2 * inter + 1) / (sizes + 1))[present].mean()
    return loss + dice_weight * (1 - dice)


def test_weighted_cross_entropy_and_dice_equal_a_direct_computation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (2, 5, 7))
    labels[0, :2] = 255  # ignored pixels count nowhere
    labels[labels == 2] = 1  # class 2 absent: left out of the Dice mean
    logits = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    weights = [0.5, 2.0, 3.0]
    got = float(SegmentationLoss(3, weights, 0.7)(labels[..., None], logits))
    assert got == pytest.approx(_numpy_loss(labels, logits, weights, 0.7), rel=1e-5)
    plain = float(SegmentationLoss(3)(labels, logits))
    assert plain == pytest.approx(_numpy_loss(labels, logits, [1, 1, 1], 0.0), rel=1e-5)
    with pytest.raises(ValueError, match="2 values for 3 classes"):
        SegmentationLoss(3, [1.0, 2.0])


def test_the_auxiliary_loss_adds_its_weight_times_the_same_loss():
    import keras

    from resnetkit.tasks.segment.metrics import mean_iou_metric
    from resnetkit.tasks.segment.model import create_segmenter

    model = create_segmenter("fcn_resnet8_fast", num_classes=3, input_shape=(16, 16, 3),
                             aux=True, aux_weight=0.4)  # fmt: skip
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    model.compile(optimizer="sgd", loss=loss, metrics=[mean_iou_metric(3)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, (2, 16, 16))
    y[0, :3] = 255
    got = model.evaluate(x, y, verbose=0, return_dict=True)
    out = model(x, training=False)
    main_loss, aux_loss = (float(loss(y, out[k])) for k in ("logits", "aux_logits"))
    assert got["loss"] == pytest.approx(main_loss + 0.4 * aux_loss, rel=1e-5)
    assert set(got) == {"loss", "miou"}  # one mask in, the main output's metric out


def test_a_run_with_class_weights_dice_and_the_auxiliary_head(tmp_path, capsys):
    data = write_voc(tmp_path / "voc")
    run = tmp_path / "run"
    argv = ["train", "--model", "unet_resnet8_fast", "--data", str(data), "--epochs", "2",
            "--batch-size", "4", "--run-dir", str(run), "--set", "data.class_weight=auto",
            "--set", "optim.dice_weight=0.5", "--set", "schedule.name=poly",
            "--set", "model.aux_weight=0.4"]  # fmt: skip
    assert main(argv) == 0
    history = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 2 and all(np.isfinite(r["loss"]) for r in history)
    import resnetkit

    model = resnetkit.load_model(run)  # the custom loss does not stop a fresh load
    assert model.get_config()["num_classes"] == 3
    assert set(model.output) == {"logits", "aux_logits"} and model.aux_weight == 0.4
    assert (run / "evaluation" / "val" / "metrics.json").is_file()
