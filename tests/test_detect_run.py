"""A detection run end to end through the engine: the plain CLI on a COCO folder, anchors
chosen from the data, validation F1, COCOeval's figures and the detections file."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from helpers import (
    assert_killed_run_resumes_exactly,
    png,
    served_predictions,
    write_coco_boxes,
)
from PIL import Image

from resnetkit.cli import main
from resnetkit.data.boxes import from_box_folder
from resnetkit.tasks.detect.anchors import AnchorConfig
from resnetkit.tasks.detect.coverage import choose_anchor_sizes, coverage
from resnetkit.tasks.detect.metrics import coco_ground_truth, coco_scores


def _as_results(split, ids, shift=0.0):
    """The truth of ``split`` as detections of score 0.9, each box moved right by ``shift``
    of its width."""
    out = []
    for i, (boxes, classes) in enumerate(zip(split.boxes, split.classes, strict=True)):
        for (x1, y1, x2, y2), k in zip(boxes, classes, strict=True):
            out.append({"image_id": i, "category_id": ids[int(k)], "score": 0.9,
                        "bbox": [x1 + shift * (x2 - x1), y1, x2 - x1, y2 - y1]})  # fmt: skip
    return out


def test_cocoeval_scores_perfect_shifted_and_no_detections(tmp_path):
    source = from_box_folder(write_coco_boxes(tmp_path / "coco"), val_fraction=0)
    split, names, ids = source.splits["val"], source.class_names, source.category_ids
    truth = coco_ground_truth(split, names, ids)
    perfect = coco_scores(truth, _as_results(split, ids), names)
    assert perfect["map"] == perfect["map_50"] == 1.0
    assert perfect["per_class_ap"] == {"red": 1.0, "blue": 1.0}
    # Every box moved right by 70% of its width: IoU 0.3 / 1.7 with its own.
    moved = coco_scores(truth, _as_results(split, ids, 0.7), names)
    assert moved["map_50"] == 0.0
    assert coco_scores(truth, [], names)["map"] == 0.0


def test_anchor_coverage_and_the_sizes_chosen_for_small_objects(tmp_path):
    source = from_box_folder(write_coco_boxes(tmp_path / "coco", size=64), val_fraction=0)
    train, grids = source.splits["train"], [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    default = coverage(train, source.class_names, AnchorConfig(), 64, grids)
    config, covered, line = choose_anchor_sizes(train, 64, grids, (0.5, 1.0, 2.0))
    assert covered > default.covered and config.sizes[0][0] < 32
    assert f"coverage {covered:.1%}" in line
    assert set(default.low(1.01)) == {"red", "blue"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch RetinaNet run on a COCO folder, through the plain CLI: (data, run,
    what training printed)."""
    root = tmp_path_factory.mktemp("detect")
    data = write_coco_boxes(root / "coco", count=20)
    run = root / "run"
    argv = ["train", "--model", "retinanet_resnet8_fast_fpn", "--data", str(data),
            "--epochs", "2", "--batch-size", "4", "--run-dir", str(run),
            "--set", "detect.score_threshold=0.001"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return data, run, printed.getvalue()


def test_train_a_retinanet_on_a_coco_folder_and_read_its_run(trained, tmp_path, capsys):
    data, run, printed = trained
    assert "coco layout, 2 classes, 16 training images" in printed
    assert "canvas 64×64" in printed and "anchors: smallest" in printed
    assert re.search(r"val mAP \d\.\d{4} \(mAP@0\.5 \d\.\d{4}, pycocotools, 4 images\)", printed)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "detection" and summary["best"]["metric"] == "val_anchor_f1"
    history = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 2 and all(np.isfinite(r["val_loss"]) for r in history)
    folder = run / "evaluation" / "val"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"map", "map_50", "map_75", "map_small", "map_medium", "map_large"} <= set(metrics)
    assert set(metrics["per_class_ap"]) == {"red", "blue"} and metrics["images"] == 4
    found = json.loads((folder / "detections.json").read_text())
    assert len(found) == metrics["detections"] > 0
    sizes = {i: Image.open(p).size for i, p in enumerate(
        from_box_folder(data).splits["val"].images)}  # fmt: skip
    for d in found:  # in each image's own pixels, with the data's own category ids
        x, y, w, h = d["bbox"]
        width, height = sizes[d["image_id"]]
        assert d["category_id"] in (5, 9) and 0 <= x <= x + w <= width and y + h <= height
    pictures = sorted((folder / "samples").glob("*.png"))
    assert len(pictures) == 4 and Image.open(pictures[0]).size[1] in (48, 64)
    assert Image.open(folder / "pr_curves.png").size[0] > 300
    assert set(metrics["pr_curves_50"]) == {"red", "blue"}
    assert all(len(c) == 101 for c in metrics["pr_curves_50"].values())
    report = (run / "report.html").read_text()
    for text in ("mAP@0.5", "AP (IoU 0.50:0.95)", "precision against recall", "worst images"):
        assert text in report, text

    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--split", "val"]) == 0
    again = json.loads((run / "evaluation" / "coco-val" / "metrics.json").read_text())
    assert again["map"] == metrics["map"] and again["detections"] == metrics["detections"]
    assert f"mAP {metrics['map']:.4f}" in capsys.readouterr().out

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    odd = tmp_path / "odd.png"
    Image.open(from_box_folder(data).splits["val"].images[0]).resize((91, 37)).save(odd)
    preds = tmp_path / "preds"
    assert main(["predict", str(run), str(odd), str(bad), "--out", str(preds)]) == 0
    captured = capsys.readouterr()
    assert "broken.png: error" in captured.err and "odd.png ->" in captured.out
    rows = json.loads((preds / "predictions.json").read_text())
    assert [("error" in r) for r in rows] == [False, True]
    assert rows[0]["detections"] and Image.open(rows[0]["picture"]).size == (91, 37)
    for d in rows[0]["detections"]:  # in the odd image's own pixels
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= 91 and 0 <= y1 <= y2 <= 37 and d["class"] in ("red", "blue")


@pytest.mark.parametrize("format, inside", [
    pytest.param("savedmodel", False, marks=pytest.mark.slow),  # the .keras case's graph
    ("onnx", True), ("litert", True), ("keras", False)])  # fmt: skip
def test_exported_detectors_decode_and_suppress_inside_and_match_keras(
    trained, tmp_path, format, inside, capsys
):
    from resnetkit.export.artifacts import load_predictor

    data, run, _ = trained
    out = tmp_path / format
    extra = ["--include-preprocessing"] if inside else []
    assert main(["export", str(run), "--format", format, "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    card = json.loads((out / "model_card.json").read_text())
    parity = card["parity"]
    assert parity["passed"] and parity["matched"] > 0 and parity["unmatched"] == 0
    assert parity["worst_iou"] >= 0.99 and parity["max_score_diff"] <= 1e-4
    assert f"{parity['matched']} detections matched" in printed
    assert card["task"] == "detection" and card["output"]["kind"] == "detections"
    expected = ("resize_pad_normalize", "uint8") if inside else ("none", "float32")
    assert (card["input"]["preprocessing_inside"], card["input"]["dtype"]) == expected
    # The artifact in its own runtime gives the run's boxes for an image of another size.
    image = np.asarray(Image.open(from_box_folder(data).splits["val"].images[1]).resize((91, 37)))
    keras_run, artifact = load_predictor(run), load_predictor(out)
    assert artifact.runtime == card["runtime"] and artifact.class_names == ["red", "blue"]
    assert artifact.prepares == inside
    _same_detections(keras_run.detect(image), artifact.detect(image))
    if format == "onnx":  # served, the artifact answers what the run predicts
        served = served_predictions(out, {"odd.png": png(image)})
        _same_detections(keras_run.detect(image), served[0]["detections"])
    if format == "litert":  # and `resnetkit predict` takes the export as it takes the run
        Image.fromarray(image).save(tmp_path / "odd.png")
        assert (
            main(["predict", str(out), str(tmp_path / "odd.png"), "--out", str(tmp_path / "p")])
            == 0
        )
        rows = json.loads((tmp_path / "p" / "predictions.json").read_text())
        _same_detections(keras_run.detect(image), rows[0]["detections"])


def _same_detections(want: list[dict], got: list[dict]) -> None:
    """The detections agree as the export parity check requires (ties aside)."""
    from resnetkit.export.detection import Matching, detection_rows

    m = Matching()
    m.add(detection_rows(want), detection_rows(got), threshold=0.001, tolerance=1e-4,
          min_iou=0.99)  # fmt: skip
    assert len(want) == len(got) > 0 and m.matched > 0 and m.unmatched == 0, m


def test_detection_export_refuses_int8_before_writing_anything(trained, tmp_path, capsys):
    _, run, _ = trained
    out = tmp_path / "int8"
    argv = ["export", str(run), "--format", "litert", "--quantize", "int8", "--out", str(out)]
    assert main(argv) == 2
    assert "float32 only" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".int8*"))


def test_data_inspect_of_a_box_folder_shows_sizes_and_warns_of_low_coverage(tmp_path, capsys):
    data = write_coco_boxes(tmp_path / "coco", count=20)
    assert main(["data", "inspect", str(data)]) == 0
    printed = capsys.readouterr().out
    assert "COCO JSON: inspected for detection" in printed
    assert "images: train 16 (0 without boxes), val 4 (0 without boxes)" in printed
    assert "canvas: 64×64 (the images' median longer side 64 px)" in printed
    assert "(P3)" in printed and "anchor coverage at IoU ≥ 0.5:" in printed
    # Demanding anchors that nearly equal each box: both classes fall below 95%, by name.
    assert main(["data", "inspect", str(data), "--positive-iou", "0.95"]) == 0
    warning = capsys.readouterr().out.split("warning: ")[-1]
    assert "below 95%" in warning and "red (" in warning and "blue (" in warning


def test_finetune_a_detector_from_a_classifier_keeps_its_batchnorm_statistics(trained, tmp_path,
                                                                              capsys):  # fmt: skip
    import resnetkit

    data, _, _ = trained
    source = tmp_path / "source"
    assert main(["train", "--model", "resnet8_fast", "--data", "digits", "--epochs", "1",
                 "--set", "run.report=false", "--run-dir", str(source)]) == 0  # fmt: skip
    run = tmp_path / "finetuned"
    argv = ["finetune", "--from", str(source), "--model", "retinanet_resnet8_fast_fpn",
            "--data", str(data), "--epochs", "2", "--batch-size", "4", "--run-dir", str(run),
            "--set", "run.report=false"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"fine-tuning from run {source}" in printed and "weights loaded" in printed
    assert "fine-tuning BatchNorm: frozen (detection keeps" in printed
    before = {w.path: np.asarray(w.numpy()) for w in resnetkit.load_model(source).weights}
    backbone = resnetkit.load_model(run).backbone
    moving = [w for w in backbone.weights if "moving_" in w.path]
    assert moving and all(w.path in before for w in moving)
    for w in moving:  # frozen: the classifier's statistics, not the detection images'
        np.testing.assert_array_equal(np.asarray(w.numpy()), before[w.path], err_msg=w.path)
    changed = [w.path for w in backbone.weights if w.trainable and w.path in before
               and not np.array_equal(np.asarray(w.numpy()), before[w.path])]  # fmt: skip
    assert changed  # the convolutions did train
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "detection" and summary["model"] == "retinanet_resnet8_fast_fpn"


def test_the_worst_images_are_those_with_most_missed_and_unmatched_boxes():
    from resnetkit.data.boxes import BoxSet
    from resnetkit.tasks.detect.predict import worst_images

    box = np.array([[0, 0, 10, 10]], np.float32)
    split = BoxSet(["a", "b", "c", "d"], [box, box, np.zeros((0, 4)), box],
                   [np.array([0]), np.array([0]), np.array([], int), np.array([1])],
                   [np.zeros(1, bool)] * 4, [(20, 20)] * 4)  # fmt: skip

    def row(category, x=0.0):
        return {"category_id": category, "bbox": [x, 0.0, 10.0, 10.0], "score": 0.9}

    found = {0: [row(7)],  # right: no error
             1: [row(7, 6.0), row(8)],  # IoU 4/16 and the wrong class: 1 missed + 2 unmatched
             2: [row(7)],  # a detection on an empty image: 1 unmatched
             3: [row(7)]}  # class 1 (id 8) found as id 7: 1 missed + 1 unmatched  # fmt: skip
    assert worst_images(split, found, [7, 8], count=8) == [1, 3, 2]
    assert worst_images(split, found, [7, 8], count=1) == [1]


def test_a_killed_detection_run_resumes_to_the_same_weights(tmp_path):
    data = write_coco_boxes(tmp_path / "coco", count=20)
    assert_killed_run_resumes_exactly(tmp_path, [
        "--model", "retinanet_resnet8_fast_fpn", "--data", str(data), "--epochs", "4",
        "--batch-size", "4", "--set", "run.report=false"])  # fmt: skip
