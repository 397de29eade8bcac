"""evaluate, predict and report: metrics against scikit-learn, a trained tiny run end to end."""

import base64
import csv
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from resnetkit.cli import main
from resnetkit.tasks.classify.metrics import calibration, classification_metrics, top_k_accuracy


@pytest.fixture(scope="module")
def digits_png(tmp_path_factory):
    """The digits exported as PNG files (train/ and test/ class folders)."""
    out = tmp_path_factory.mktemp("png") / "digits"
    assert main(["data", "export", "digits", str(out)]) == 0
    return out


def test_metrics_match_scikit_learn():
    from sklearn import metrics as sk

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 500)
    probs = rng.dirichlet(np.ones(7), 500)
    probs[np.arange(250), labels[:250]] += 1.5  # half of them right, confidently
    probs /= probs.sum(-1, keepdims=True)
    names = [f"c{i}" for i in range(7)]
    m = classification_metrics(probs, labels, names)
    predicted = probs.argmax(-1)
    np.testing.assert_array_equal(
        m["confusion_matrix"], sk.confusion_matrix(labels, predicted, labels=range(7))
    )
    p, r, f, s = sk.precision_recall_fscore_support(labels, predicted, zero_division=0)
    got = m["classes"]
    np.testing.assert_allclose([got[n]["precision"] for n in names], p)
    np.testing.assert_allclose([got[n]["recall"] for n in names], r)
    np.testing.assert_allclose([got[n]["f1"] for n in names], f)
    assert [got[n]["support"] for n in names] == s.tolist()
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(
            labels, predicted, average=average, zero_division=0
        )
        assert m["averages"][average]["f1"] == pytest.approx(f)
        assert m["averages"][average]["precision"] == pytest.approx(p)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert m["top5_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(labels, probs, k=5, labels=range(7))
    )
    assert m["nll"] == pytest.approx(sk.log_loss(labels, probs, labels=range(7)))


def test_calibration_error_by_hand():
    # Two bins used: confidence 0.9 (2 images, 1 right) and 0.6 (2 images, both right).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    c = calibration(probs, labels, bins=10)
    assert c["ece"] == pytest.approx(0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6))
    used = [b for b in c["bins"] if b["count"]]
    assert [(b["count"], b["accuracy"]) for b in used] == [(2, 1.0), (2, 0.5)]
    assert sum(b["count"] for b in c["bins"]) == 4
    assert top_k_accuracy(probs, np.array([1, 1, 0, 0]), 1) == 0.0


def test_a_training_run_ends_with_evaluation_and_a_self_contained_report(digits_run):
    summary = json.loads((digits_run / "summary.json").read_text())
    evaluation = digits_run / "evaluation" / "test"
    metrics = json.loads((evaluation / "metrics.json").read_text())
    # Our argmax over the saved predictions agrees with Keras' own accuracy metric.
    assert metrics["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    assert metrics["images"] == 359 and metrics["split"] == "test"  # 20% of 1,797
    assert sum(summary["data_summary"]["counts"]["test"]) == 359
    with open(evaluation / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 359
    assert np.mean([int(r["correct"]) for r in rows]) == pytest.approx(metrics["accuracy"])
    for name in ("confusion_matrix", "confusion_matrix_normalized", "reliability", "mistakes"):
        assert Image.open(evaluation / f"{name}.png").size[0] > 100

    page = (digits_run / "report.html").read_text()
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == page.count("<img") >= 6  # curves, 2 confusion, reliability, ...
    for src in sources:  # every image is embedded, and each is a real PNG
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.format == "PNG" and image.size[0] > 50
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    for text in ("Grad-CAM", "Calibration", "per-epoch metrics", "resnet_tiny", "tensorflow"):
        assert text in page


def test_report_command_rewrites_the_page_and_rejects_other_folders(digits_run, tmp_path, capsys):
    page = digits_run / "report.html"
    before = page.read_text()
    page.unlink()
    assert main(["report", str(digits_run)]) == 0
    assert page.read_text().count("<img") == before.count("<img")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a resnetkit run directory" in capsys.readouterr().err


def test_evaluate_cli_on_files_matches_arrays_and_lists_bad_files(
    digits_run, digits_png, tmp_path, capsys
):
    argv = ["evaluate", str(digits_run), "--data", "digits", "--out", str(tmp_path / "a")]
    assert main(argv) == 0
    from_arrays = json.loads((tmp_path / "a" / "metrics.json").read_text())
    table = capsys.readouterr().out
    assert "macro avg" in table and "ECE" in table

    folder = tmp_path / "png"
    shutil.copytree(digits_png, folder)
    (folder / "test" / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["evaluate", str(digits_run), "--data", str(folder), "--tta"]) == 0
    out = digits_run / "evaluation" / "png-test"
    from_files = json.loads((out / "metrics.json").read_text())
    # The same 359 images as PNG files, the bad file named.
    assert from_files["images"] == 359 and from_files["tta"] is True
    assert any(p.endswith("broken.png") for p in from_files["skipped_files"])
    assert "unreadable files left out: 1" in capsys.readouterr().out
    no_tta = tmp_path / "b"
    assert main(["evaluate", str(digits_run), "--data", str(folder), "--out", str(no_tta)]) == 0
    same = json.loads((no_tta / "metrics.json").read_text())
    assert same["confusion_matrix"] == from_arrays["confusion_matrix"]


def test_evaluate_maps_a_subset_of_classes_by_name_and_names_unknown_ones(
    digits_run, digits_png, tmp_path, capsys
):
    subset = tmp_path / "subset"
    for digit in ("7", "2"):
        shutil.copytree(digits_png / "test" / digit, subset / digit)
    argv = ["evaluate", str(digits_run), "--data", str(subset), "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    for digit in ("7", "2"):  # each class's support: the files copied for it
        assert m["classes"][digit]["support"] == len(list((subset / digit).iterdir())) > 0
    assert m["classes"]["0"]["support"] == 0  # scored in the model's 10 classes
    (subset / "cat").mkdir()
    Image.new("L", (8, 8)).save(subset / "cat" / "x.png")
    assert main(["evaluate", str(digits_run), "--data", str(subset)]) == 2
    assert "cat" in capsys.readouterr().err


def test_predict_files_folders_globs_and_unreadable_files(digits_run, digits_png, tmp_path, capsys):
    from resnetkit.tasks.classify.predictor import load_classifier

    images = sorted((digits_png / "test" / "4").glob("*.png"))[:3]
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    out = tmp_path / "preds.json"
    argv = ["predict", str(digits_run), str(images[0]), str(digits_png / "test" / "5"),
            str(digits_png / "test" / "6" / "*.png"), str(bad), "--top-k", "3",
            "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "UNREADABLE" in captured.out and "1 of" in captured.err
    rows = json.loads(out.read_text())
    n5 = len(list((digits_png / "test" / "5").glob("*.png")))
    n6 = len(list((digits_png / "test" / "6").glob("*.png")))
    assert len(rows) == 1 + n5 + n6 + 1
    assert rows[-1]["file"] == str(bad) and "error" in rows[-1]
    assert all(len(r["top"]) == 3 for r in rows[:-1])

    classifier = load_classifier(digits_run)
    probs = classifier.predict_arrays([classifier.decode(images[0])])[0]
    best = rows[0]["top"][0]
    assert best["class"] == classifier.class_names[probs.argmax()]
    assert best["probability"] == pytest.approx(float(probs.max()), abs=1e-5)

    csv_out = tmp_path / "preds.csv"
    assert main(["predict", str(digits_run), *map(str, images), "--output", str(csv_out)]) == 0
    with open(csv_out, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 * 5 and table[0]["rank"] == "1"
    assert main(["predict", str(digits_run), str(bad)]) == 1  # nothing could be read
    assert main(["predict", str(digits_run), str(tmp_path / "missing.png")]) == 2
    assert "image not found" in capsys.readouterr().err


def test_loading_names_what_is_wrong(tmp_path, capsys):
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "config.yaml").write_text("model: {name: resnet_tiny}\n")
    assert main(["predict", str(tmp_path), str(tmp_path / "x.png")]) == 2  # unfinished run
    assert "resume it" in capsys.readouterr().err
    bogus = tmp_path / "bogus.keras"
    bogus.write_text("not a zip")
    assert main(["predict", str(bogus), str(tmp_path / "x.png")]) == 2
    assert "bogus.keras" in capsys.readouterr().err
