"""Export: BatchNorm folding, each format's round trip in its own runtime, the parity gate,
prediction from artifacts, and the CLI."""

import json
import shutil

import keras
import numpy as np
import pytest
from helpers import fill_weights
from PIL import Image

from resnetkit.cli import main
from resnetkit.export import ParityError, export_model, inference_model, load_artifact
from resnetkit.export.fold import fold_batchnorm
from resnetkit.models import create_model
from resnetkit.tasks.classify.predictor import load_classifier


@pytest.fixture(scope="module")
def digits_test(digits_run):
    """The digits test images (uint8, 8×8×1), labels, and the run's probabilities for them
    through ``Classifier.predict_arrays`` (the path ``predict`` takes for a run)."""
    from resnetkit.data import load_data

    split = load_data("digits", val_fraction=0).splits["test"]
    return split.arrays, split.labels, load_classifier(digits_run).predict_arrays(split.arrays)


def test_fold_formula_by_hand():
    # scale = gamma / sqrt(var + eps) = 3 / sqrt(3 + 1) = 1.5
    kernel, bias = fold_batchnorm(
        np.full((1, 1, 1, 1), 2.0), np.array([1.0]), [3.0], [0.5], [1.0], [3.0], 1.0
    )
    assert kernel.item() == 3.0  # 2 × 1.5
    assert bias.item() == 0.5  # (1 - 1) × 1.5 + 0.5


@pytest.mark.parametrize(
    ("name", "options", "kept"),
    [
        ("resnet_tiny", {}, 0),  # post-activation: every BatchNorm follows a conv
        ("wrn16_4", {}, 6),  # pre-activation: BN after an addition or the stem stays
        ("seed", {}, 0),  # biased convolutions (the article's Keras code)
        ("resnet_tiny", {"dtype": "mixed_bfloat16"}, 0),  # folded into a float32 model
    ],
)
def test_folded_model_gives_the_same_outputs(name, options, kept):
    model = create_model(name, num_classes=7, input_shape=(16, 16, 3), **options)
    fill_weights(model, seed=1)  # non-trivial BN statistics, gammas and betas
    reference, _ = inference_model(model, fold=False)
    folded, report = inference_model(model)
    bns = [la for la in folded.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(bns) == len(report.kept) == kept
    assert report.folded and len(report.folded) + kept == sum(
        isinstance(la, keras.layers.BatchNormalization) for la in model.layers
    )
    assert all(la.dtype_policy.name == "float32" for la in folded.layers)
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(reference(x))
    got = keras.ops.convert_to_numpy(folded(x))
    assert np.abs(want).max() > 0.1  # the comparison is not between zeros
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    if "dtype" not in options:  # the float32 model itself, not only its float32 copy
        np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x)), atol=1e-4, rtol=0)


def _run_export(capsys, *args) -> str:
    assert main(["export", *map(str, args)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("format", "preprocessing", "quantize", "inside"),
    [
        ("savedmodel", True, None, "resize_crop_normalize"),
        ("onnx", False, None, "none"),
        ("litert", False, None, "none"),
        ("litert", True, "int8", "normalize"),
        ("keras", False, None, "none"),
    ],
)
def test_round_trip(digits_run, digits_test, tmp_path, format, preprocessing, quantize, inside):
    out = tmp_path / format
    result = export_model(
        digits_run, out, format, include_preprocessing=preprocessing, quantize=quantize
    )
    card = json.loads((out / "model_card.json").read_text())
    classifier = load_classifier(digits_run)
    assert (out / "labels.txt").read_text().splitlines() == classifier.class_names
    assert result.artifact.exists() and card["artifact"] == result.artifact.name
    assert card["input"]["preprocessing_inside"] == inside
    assert card["input"]["dtype"] == ("float32" if inside == "none" else "uint8")
    # The run's resnet_tiny is post-activation, so every BatchNorm follows a convolution and
    # folds: the stem's, two per basic block, and one per projection shortcut (a stage whose
    # stride or width changes the shape): 1 + 2 × 2 + 1 = 6.
    spec = classifier.model.variant
    inputs = (spec.stem_width, *spec.widths[:-1])
    stages = zip(spec.stage_strides, inputs, spec.widths, strict=True)
    projections = sum(stride > 1 or width != before for stride, before, width in stages)
    assert spec.block == "basic" and spec.shortcut == "B" and not spec.preact
    bns = [la for la in classifier.model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(bns) == 1 + 2 * sum(spec.depths) + projections
    assert card["optimizations"]["batchnorm_folded"] == len(bns)
    assert card["optimizations"]["batchnorm_kept"] == 0
    assert card["metrics"]["test_accuracy"] > 0.9
    assert card["parity"]["passed"] and card["parity"]["images"] >= 256
    assert not list(tmp_path.glob(".*partial*"))  # the staging folder was renamed into place

    # Independently of the export's own check: the artifact in its runtime against Keras.
    artifact = load_artifact(out)
    assert artifact.runtime == card["runtime"]
    images, labels, want = digits_test
    got = artifact.predict_arrays(images)
    agree = np.mean(got.argmax(-1) == want.argmax(-1))
    if quantize:
        assert card["parity"]["top1_agreement"] >= 0.99
        assert agree >= 0.99
        assert np.mean(got.argmax(-1) == labels) > 0.9
    else:
        assert card["parity"]["max_abs_diff"] <= 1e-4
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    if inside == "resize_crop_normalize":
        # Other sizes, resized inside the graph: the same answers as the host pipeline.
        rng = np.random.default_rng(0)
        odd = [rng.integers(0, 256, (h, w, 1), np.uint8) for h, w in [(20, 13), (5, 9), (8, 8)]]
        np.testing.assert_allclose(
            artifact.predict_arrays(odd), classifier.predict_arrays(odd), atol=1e-4, rtol=0
        )
        assert card["parity"]["rescaled_images"] > 0


def test_cli_export_and_predict_from_the_artifact(digits_run, digits_test, tmp_path, capsys):
    out = tmp_path / "onnx"
    text = _run_export(capsys, digits_run, "--format", "onnx", "--out", out, "--check-images", 64)
    assert "parity (64 images" in text and "max abs difference" in text
    folder = tmp_path / "png"
    folder.mkdir()
    images, _, _ = digits_test
    for i in range(5):
        Image.fromarray(images[i][..., 0]).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")

    def predict(model, *extra):
        target = tmp_path / f"rows-{len(list(tmp_path.glob('rows-*')))}.json"
        code = main(["predict", str(model), str(folder), "--output", str(target), *extra])
        capsys.readouterr()
        return code, json.loads(target.read_text())

    code, from_run = predict(digits_run)
    assert code == 0
    for model, runtime in [(out / "model.onnx", "onnxruntime"), (out, None)]:
        code, rows = predict(model, *(["--runtime", runtime] if runtime else []))
        assert code == 0
        assert [r["file"] for r in rows] == [r["file"] for r in from_run]
        assert rows[-1] == from_run[-1] and "error" in rows[-1]  # broken.png, same reason
        for a, b in zip(rows[:-1], from_run[:-1], strict=True):
            assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
            np.testing.assert_allclose(
                [t["probability"] for t in a["top"]],
                [t["probability"] for t in b["top"]],
                atol=1e-4,
            )
    # Each format runs in its own runtime only.
    assert main(["predict", str(out), str(folder), "--runtime", "tensorflow"]) == 2
    assert "runs on onnxruntime" in capsys.readouterr().err


def test_failed_parity_removes_the_artifact(digits_run, tmp_path, monkeypatch):
    """An exporter that gets the numbers slightly wrong must not leave a valid-looking folder."""
    import resnetkit.export.export as export

    def skewed(path, runtime=None):
        artifact = load_artifact(path, runtime)
        run = artifact.run
        artifact.run = lambda x: run(x) + 1e-3
        return artifact

    monkeypatch.setattr(export, "load_artifact", skewed)
    out = tmp_path / "keras"
    with pytest.raises(ParityError, match=r"max abs difference 1\.0\de-03"):
        export_model(digits_run, out, "keras", check_count=32)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder either


def test_export_refuses_bad_requests(digits_run, tmp_path):
    with pytest.raises(ValueError, match="only 'int8' for --format litert"):
        export_model(digits_run, tmp_path / "a", "onnx", quantize="int8")
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(digits_run, tmp_path / "a", "tflite")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_model(digits_run, tmp_path / "taken", "onnx")
    # A bare .keras file has no run data: the parity check needs --data.
    shutil.copy(digits_run / "model.keras", tmp_path / "bare.keras")
    with pytest.raises(ValueError, match="pass --data"):
        export_model(tmp_path / "bare.keras", tmp_path / "b", "keras")
    assert not (tmp_path / "b").exists()


def test_a_missing_exporter_package_is_named_with_its_install_command(
    tmp_path, monkeypatch, capsys
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))  # fmt: skip
    out = tmp_path / "onnx"
    # Refused before the (missing) model is even read: nothing is written.
    assert main(["export", str(tmp_path / "no-run"), "--format", "onnx", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "--format onnx needs tf2onnx, not installed: pip install 'resnetkit[export]'" in err
    assert not out.exists()
