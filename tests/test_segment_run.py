"""A segmentation run end to end through the engine: the plain CLI on a VOC-layout folder,
the run directory, evaluation, report, and an exact resume after SIGKILL."""

from __future__ import annotations

import json

import numpy as np
from helpers import assert_killed_run_resumes_exactly, write_voc

from resnetkit.cli import main


def test_train_a_unet_on_a_voc_folder_and_read_its_run(tmp_path, capsys):
    data = write_voc(tmp_path / "voc")
    run = tmp_path / "run"
    argv = ["train", "--model", "unet_resnet8_fast", "--data", str(data), "--epochs", "3",
            "--batch-size", "4", "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "voc layout, 3 classes, 19 training pairs" in printed
    assert "image and mask together" in printed and "val_miou" in printed
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "segmentation" and summary["epochs"] == 3
    assert summary["best"]["metric"] == "val_miou"
    history = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["val_miou"] <= 1 for r in history)
    metrics = json.loads((run / "evaluation" / "val" / "metrics.json").read_text())
    assert set(metrics["per_class_iou"]) == {"background", "red", "blue"}
    # Keras' MeanIoU over the validation stream and the evaluation's matrix are one count.
    assert abs(metrics["miou"] - history[-1]["val_miou"]) < 1e-6
    assert np.asarray(metrics["confusion"]).sum() == 5 * 32 * 32  # every val pixel, once
    report = (run / "report.html").read_text()
    assert "mean IoU" in report and "Image | truth | prediction" in report
    assert "samples.png missing" not in report and "worst.png missing" not in report
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--split", "val"]) == 0
    again = json.loads((run / "evaluation" / "voc-val" / "metrics.json").read_text())
    assert again["miou"] == metrics["miou"] and again["confusion"] == metrics["confusion"]
    assert f"mean IoU {metrics['miou']:.4f}" in capsys.readouterr().out

    from PIL import Image

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    odd = tmp_path / "odd.png"
    Image.open(data / "JPEGImages" / "000.jpg").resize((41, 29)).save(odd)
    preds = tmp_path / "preds"
    assert main(["predict", str(run), str(odd), str(bad), "--out", str(preds)]) == 0
    captured = capsys.readouterr()
    assert "broken.png: error" in captured.err and "odd.png ->" in captured.out
    rows = json.loads((preds / "predictions.json").read_text())
    assert [("error" in r) for r in rows] == [False, True]
    mask = np.asarray(Image.open(rows[0]["mask"]))
    assert mask.shape == (29, 41) and mask.max() <= 2  # the image's own size, run's classes
    assert abs(sum(rows[0]["shares"].values()) - 1) < 1e-4
    assert Image.open(rows[0]["overlay"]).size == (41, 29)
    import resnetkit

    model = resnetkit.load_model(run)
    logits = model(np.zeros((1, 37, 41, 3), "float32"))
    assert tuple(logits.shape) == (1, 37, 41, 3)


def test_a_killed_segmentation_run_resumes_to_the_same_weights(tmp_path):
    data = write_voc(tmp_path / "voc", count=20)
    assert_killed_run_resumes_exactly(tmp_path, [
        "--model", "unet_resnet8_fast", "--data", str(data), "--epochs", "4",
        "--batch-size", "4", "--set", "run.report=false"])  # fmt: skip


def test_fine_tune_a_segmenter_from_a_classification_run(tmp_path, capsys):
    """The classifier's backbone loads into the segmenter's; a linear probe trains the head
    alone, so every backbone weight and BatchNorm statistic stays as loaded."""
    import resnetkit

    data = write_voc(tmp_path / "voc")
    source = tmp_path / "source"
    assert main(["train", "--model", "resnet_tiny", "--data", "digits", "--epochs", "1",
                 "--set", "run.report=false", "--run-dir", str(source)]) == 0  # fmt: skip
    wrong = ["finetune", "--from", str(source), "--model", "unet_resnet18", "--data", str(data)]
    assert main(wrong) == 2
    assert "use --model unet_resnet_tiny" in capsys.readouterr().err
    run = tmp_path / "probe"
    argv = ["finetune", "--from", str(source), "--model", "fcn_resnet_tiny", "--data",
            str(data), "--strategy", "linear", "--epochs", "2", "--batch-size", "4",
            "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"fine-tuning from run {source}" in printed and "weights loaded" in printed
    assert "first convolution adapted from 1 to 3 input channels" in printed
    before = resnetkit.load_model(source)
    after = resnetkit.load_model(run).backbone
    kept = {w.path: np.asarray(w.numpy()) for w in before.weights if "head" not in w.path}
    for w in after.weights:
        if w.path in kept and w.path != "stem_conv/kernel":  # the adapted first convolution
            np.testing.assert_array_equal(np.asarray(w.numpy()), kept[w.path], err_msg=w.path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "segmentation" and summary["model"] == "fcn_resnet_tiny"
