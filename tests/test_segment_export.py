"""Exporting a segmentation run: SavedModel, ONNX and LiteRT parity-checked on the run's
validation pairs, masks from the export equal to the run's, and a failed check leaving
nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import write_voc
from PIL import Image

from resnetkit.cli import main


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("segexport")
    data = write_voc(root / "voc")
    run = root / "run"
    argv = ["train", "--model", "unet_resnet8_fast", "--data", str(data), "--epochs", "1",
            "--batch-size", "4", "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    return run, data


@pytest.mark.parametrize(
    ("format", "extra"),
    [("savedmodel", []), ("onnx", ["--include-preprocessing"]), ("litert", [])],
)
def test_export_a_segmenter_with_parity(seg_run, tmp_path, capsys, format, extra):
    run, data = seg_run
    out = tmp_path / format
    assert main(["export", str(run), "--format", format, "--out", str(out), *extra]) == 0
    assert "max abs difference" in capsys.readouterr().out
    card = json.loads((out / "model_card.json").read_text())
    parity = card["parity"]
    assert card["task"] == "segmentation" and parity["passed"]
    assert parity["max_abs_diff"] <= 1e-4 and parity["images"] == 5
    assert parity["pixel_agreement"] > 0.999
    assert abs(parity["miou_change"]) < 1e-3
    assert card["optimizations"]["batchnorm_folded"] > 0
    assert (out / "labels.txt").read_text().split() == ["background", "red", "blue"]
    # The export predicts the run's masks, at an odd size the network never saw too.
    odd, crop = tmp_path / "odd.png", tmp_path / "crop.png"
    Image.open(data / "JPEGImages" / "000.jpg").resize((41, 29)).save(odd)
    Image.open(data / "JPEGImages" / "001.jpg").save(crop)  # the run's crop size
    masks = {}
    for name, source in (("run", run), ("export", out)):
        argv = ["predict", str(source), str(odd), str(crop), "--out", str(tmp_path / name)]
        assert main(argv) == 0
        files = ("odd.png", "crop.png")
        masks[name] = [np.asarray(Image.open(tmp_path / name / f)) for f in files]
    assert masks["export"][0].shape == (29, 41)
    assert np.array_equal(masks["export"][1], masks["run"][1])
    if format != "litert":  # LiteRT takes the crop size: the odd image is resized to it
        assert np.array_equal(masks["export"][0], masks["run"][0])


def test_a_failed_segmenter_parity_check_leaves_nothing(seg_run, tmp_path):
    from resnetkit.export import ParityError, export_model

    run, _ = seg_run
    out = tmp_path / "strict"
    with pytest.raises(ParityError, match="max abs difference"):
        export_model(run, out, "onnx", tolerance=0.0, log=lambda _: None)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_serve_a_segmenter_run_and_its_export(seg_run, tmp_path):
    import base64
    import io

    from helpers import png, served_predictions

    from resnetkit.export import export_model
    from resnetkit.tasks.segment.predictor import load_mask_predictor

    run, _ = seg_run
    export_model(run, tmp_path / "onnx", "onnx", log=lambda _: None)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (29, 41, 3), np.uint8), rng.integers(0, 256, (32, 32, 3),
                                                                         np.uint8)]  # fmt: skip
    want = load_mask_predictor(run).predict_arrays(images)
    for source in (run, tmp_path / "onnx"):
        rows = served_predictions(source, {"a.png": png(images[0]), "b.png": png(images[1])})
        for row, mask in zip(rows, want, strict=True):
            got = np.asarray(Image.open(io.BytesIO(base64.b64decode(row["mask_png"]))))
            assert (row["height"], row["width"]) == mask.shape
            assert np.array_equal(got, mask), source
            assert abs(sum(row["shares"].values()) - 1) < 1e-4


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_a_dilated_deeplab_exports_with_parity(tmp_path, format):
    """ASPP's dilated convolutions (DilatedConv2D) in ONNX and LiteRT: onnxruntime and
    XNNPACK refuse a dilated auto-padded ("SAME") convolution, so the layer pads itself."""
    data = write_voc(tmp_path / "voc", count=12)
    run = tmp_path / "run"
    argv = ["train", "--model", "deeplabv3plus_resnet8_fast", "--data", str(data),
            "--epochs", "1", "--batch-size", "4", "--run-dir", str(run),
            "--set", "run.report=false"]  # fmt: skip
    assert main(argv) == 0
    out = tmp_path / format
    assert main(["export", str(run), "--format", format, "--out", str(out)]) == 0
    parity = json.loads((out / "model_card.json").read_text())["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
