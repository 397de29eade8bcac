"""A run's report: one self-contained page (every image embedded as a data URI).

It is assembled from what the run directory already holds (``RunDir``: the config, summary,
per-epoch metrics and curves, the bad-image list and the evaluation folder written at the
end of training, ``evaluation/test`` or ``evaluation/val``), plus
Grad-CAM overlays computed now for the evaluation's sample images. Nothing is fetched
from the network when the page is opened, so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

from resnetkit.files import write_atomic
from resnetkit.rundir import RunDir

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 3px 9px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 90%; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.muted { color: #777; } .figures { display: flex; flex-wrap: wrap; gap: 1em; }
.figures img { max-width: 520px; }
"""


def write_report(run_dir: str | Path) -> Path:
    """Write (or rewrite) ``run_dir/report.html`` atomically and return its path."""
    run = RunDir(run_dir).require_run()
    write_atomic(run.report, render(run))
    return run.report


def render(run: RunDir) -> str:
    """The page's HTML text."""
    summary = run.read_summary()
    history = run.read_history()
    evaluation = _evaluation_dir(run)
    metrics = _json(evaluation / "metrics.json") if evaluation else None
    title = f"{summary.get('model', 'model')} on {summary.get('data', 'data')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>resnetkit report: {_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">run directory {_e(str(run.path.resolve()))}</p>',
        _overview(summary, history, metrics),
        _section_curves(run, history),
        _section_evaluation(evaluation, metrics),
        _section_gradcam(run, evaluation),
        _section_data(run, summary),
        _section_timing(summary, history),
        "<h2>Configuration</h2>",
        f"<pre>{_e(run.config.read_text(encoding='utf8'))}</pre>",
        _section_environment(summary),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _overview(summary: dict, history: list[dict], metrics: dict | None) -> str:
    rows = []
    if metrics and "map" in metrics:  # detection
        split = metrics.get("split", "test")
        rows.append((f"{split} mAP (IoU 0.50:0.95)", f"{metrics['map']:.4f}"))
        rows.append((f"{split} mAP@0.5", f"{metrics['map_50']:.4f}"))
        rows.append((f"{split} mAP@0.75", f"{metrics['map_75']:.4f}"))
    elif metrics and "miou" in metrics:  # segmentation
        split = metrics.get("split", "test")
        rows.append((f"{split} mean IoU", f"{metrics['miou']:.4f}"))
        rows.append((f"{split} pixel accuracy", _pct(metrics["pixel_accuracy"])))
        rows.append((f"{split} frequency-weighted IoU", f"{metrics['fw_iou']:.4f}"))
    elif metrics:
        split = metrics.get("split", "test")
        tta = " (flip TTA)" if metrics.get("tta") else ""
        rows.append((f"{split} accuracy{tta}", _pct(metrics["accuracy"])))
        if metrics.get("top5_accuracy") is not None:
            rows.append((f"{split} top-5 accuracy", _pct(metrics["top5_accuracy"])))
        rows.append((f"{split} macro F1", f"{metrics['averages']['macro']['f1']:.4f}"))
        rows.append((f"{split} calibration error (ECE)", f"{metrics['calibration']['ece']:.4f}"))
    if summary.get("test_accuracy_no_tta") is not None:
        rows.append(("test accuracy without TTA", _pct(summary["test_accuracy_no_tta"])))
    best = summary.get("best")
    if best:
        rows.append((f"best {best['metric']}", f"{best['value']:.4f} (epoch {best['epoch']})"))
    if history:
        last = history[-1]
        rows.append(("epochs", str(last["epoch"])))
        rows.append(("final training loss", f"{last['loss']:.4f}"))
        if "accuracy" in last:
            rows.append(("final training accuracy", _pct(last["accuracy"])))
    if summary.get("train_seconds") is not None:
        rows.append(("training time", _duration(summary["train_seconds"])))
    if not rows:
        return '<p class="muted">The run has not finished: no summary yet.</p>'
    return "<h2>Results</h2>" + _table(["", "value"], rows)


def _section_curves(run: RunDir, history: list[dict]) -> str:
    if not history:
        return ""
    curves = run.curves
    if not curves.is_file():
        from resnetkit.plots import training_curves

        training_curves(history, curves)
    keys = [k for k in history[0] if k != "epoch"]
    rows = [[str(r["epoch"]), *(_number(r.get(k)) for k in keys)] for r in history]
    return (
        "<h2>Training curves</h2>"
        + _img(curves, "loss, accuracy and learning rate per epoch")
        + "<details><summary>per-epoch metrics</summary>"
        + _table(["epoch", *keys], rows)
        + "</details>"
    )


def _section_evaluation(evaluation: Path | None, metrics: dict | None) -> str:
    if not metrics:
        return "<h2>Evaluation</h2><p class='muted'>No test or validation split was evaluated.</p>"
    if "miou" in metrics:
        return _section_segmentation(evaluation, metrics)
    if "map" in metrics:
        return _section_detection(evaluation, metrics)
    split = metrics.get("split", evaluation.name)
    rows = [
        (name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", f"{m['support']:,}")
        for name, m in [*metrics["classes"].items(), *metrics["averages"].items()]
    ]
    for i, name in enumerate(metrics["averages"], start=len(metrics["classes"])):
        rows[i] = (f"{name} average", *rows[i][1:])
    skipped = metrics.get("skipped_files") or []
    return "\n".join(
        [
            f"<h2>Evaluation on the {_e(split)} split ({metrics['images']:,} images)</h2>",
            _table(["class", "precision", "recall", "F1", "support"], rows),
            f"<p>{len(skipped)} unreadable file(s) left out.</p>" if skipped else "",
            '<div class="figures">',
            _img(evaluation / "confusion_matrix.png", "confusion matrix, counts"),
            _img(evaluation / "confusion_matrix_normalized.png", "confusion matrix, normalized"),
            "</div>",
            "<h3>Calibration</h3>",
            f"<p>Expected calibration error {metrics['calibration']['ece']:.4f}; negative "
            f"log-likelihood {metrics['nll']:.4f}.</p>",
            _img(evaluation / "reliability.png", "reliability diagram"),
            "<h3>Most confident mistakes</h3>",
            _img(evaluation / "mistakes.png", "most confident mistakes"),
        ]
    )


def _section_segmentation(evaluation: Path, metrics: dict) -> str:
    """Per-class IoU and the pixel confusion matrix of a segmentation run."""
    rows = [(name, "–" if iou is None else f"{iou:.4f}")
            for name, iou in metrics["per_class_iou"].items()]  # fmt: skip
    split = metrics.get("split", evaluation.name)
    return "\n".join(
        [
            f"<h2>Evaluation on the {_e(split)} split ({metrics['images']:,} images)</h2>",
            f"<p>Mean IoU {metrics['miou']:.4f} over the classes present (– : a class in "
            "neither the masks nor the predictions); pixels labelled 255 are not scored.</p>",
            _table(["class", "IoU"], rows),
            _img(evaluation / "confusion_matrix_normalized.png", "pixel confusion, normalized"),
            "<h3>Image | truth | prediction</h3>",
            _img(evaluation / "samples.png", "the first images of the split"),
            "<h3>The worst of them (lowest pixel accuracy)</h3>",
            _img(evaluation / "worst.png", "the images with the lowest pixel accuracy"),
        ]
    )


def _section_detection(evaluation: Path, metrics: dict) -> str:
    """COCO's figures per class and size, precision–recall curves, sample and worst images."""
    at_50 = metrics.get("per_class_ap_50", {})
    rows = [(name, "–" if ap is None else f"{ap:.4f}",
             "–" if at_50.get(name) is None else f"{at_50[name]:.4f}")
            for name, ap in metrics["per_class_ap"].items()]  # fmt: skip
    sizes = [(size, f"{metrics[f'map_{size}']:.4f}") for size in ("small", "medium", "large")]
    split = metrics.get("split", evaluation.name)
    pictures = [_img(p, p.stem) for p in sorted((evaluation / "samples").glob("*.png"))]
    worst = [_img(p, p.stem) for p in sorted((evaluation / "worst").glob("*.png"))]
    return "\n".join(
        [
            f"<h2>Evaluation on the {_e(split)} split ({metrics['images']:,} images)</h2>",
            f"<p>pycocotools' COCOeval on {metrics['detections']:,} detections, in each "
            "image's own pixels; – : a class with no true box in the split.</p>",
            _table(["class", "AP (IoU 0.50:0.95)", "AP@0.5"], rows),
            _table(["object size (COCO's areas)", "mAP"], sizes),
            _img(evaluation / "pr_curves.png", "precision against recall per class, IoU 0.5"),
            "<h3>Truth (green) | detections of score ≥ 0.3 (red)</h3>",
            '<div class="figures">',
            *pictures,
            "</div>",
            "<h3>The worst images (most missed and unmatched boxes)</h3>",
            '<div class="figures">',
            *worst,
            "</div>",
        ]
    )


def _section_gradcam(run: RunDir, evaluation: Path | None) -> str:
    """Sample predictions with Grad-CAM overlays, drawn now from ``samples.npz``."""
    if evaluation is None or not (evaluation / "samples.npz").is_file():
        return ""
    import numpy as np

    from resnetkit.explain import explain, explanation_grid
    from resnetkit.plots import save_figure
    from resnetkit.tasks.classify.predictor import load_classifier

    with np.load(evaluation / "samples.npz", allow_pickle=True) as f:
        images, labels = list(f["images"]), f["labels"]
    classifier = load_classifier(run.path)
    found = explain(classifier, images)
    names = classifier.class_names
    titles = [
        f"{names[e.class_index]} {e.probability:.0%}\n(true: {names[int(y)]})"
        for e, y in zip(found, labels, strict=True)
    ]
    buffer = io.BytesIO()
    save_figure(explanation_grid(found, names, titles=titles, columns=min(len(found), 8)), buffer)
    return (
        "<h2>Sample predictions with Grad-CAM</h2>"
        "<p>Red marks the regions of the last stage's feature map that raise the predicted "
        "class's score most (Grad-CAM).</p>" + _img_bytes(buffer.getvalue(), "Grad-CAM overlays")
    )


def _section_data(run: RunDir, summary: dict) -> str:
    data = summary.get("data_summary")
    parts = ["<h2>Data</h2>"]
    if data:
        classes = data["classes"]
        splits = list(data["counts"])
        rows = [[c, *(f"{data['counts'][s][i]:,}" for s in splits)] for i, c in enumerate(classes)]
        rows.append(["total", *(f"{sum(data['counts'][s]):,}" for s in splits)])
        unit = data.get("unit", "images")
        parts.append(
            f"<p>{_e(str(summary.get('data')))}: {len(classes)} classes; {unit} per class.</p>"
        )
        parts.append(_table(["class", *splits], rows))
    bad = run.bad_images
    if bad.is_file():
        with open(bad, newline="", encoding="utf8") as f:
            rows = list(csv.reader(f))[1:]
        parts.append(f"<p>{len(rows)} bad file(s) skipped (bad_images.csv).</p>")
        if rows:
            parts.append(_table(["file", "reason"], rows[:50]))
    else:
        parts.append("<p>No bad files.</p>")
    return "\n".join(parts)


def _section_timing(summary: dict, history: list[dict]) -> str:
    rows = []
    if summary.get("train_seconds") is not None:
        rows.append(("training (all sessions)", _duration(summary["train_seconds"])))
    if summary.get("session_wall_seconds") is not None:
        rows.append(("last session, start to end", _duration(summary["session_wall_seconds"])))
    if summary.get("images_per_second"):
        rows.append(
            ("training images/second (median epoch)", f"{summary['images_per_second']:,.0f}")
        )
    if history and "epoch_seconds" in history[-1]:
        seconds = sorted(r["epoch_seconds"] for r in history)
        rows.append(("epoch time (median)", _duration(seconds[len(seconds) // 2])))
    return "<h2>Timing</h2>" + _table(["", ""], rows) if rows else ""


def _section_environment(summary: dict) -> str:
    versions = summary.get("versions") or {}
    if not versions:
        return ""
    return "<h2>Environment</h2>" + _table(["", ""], [(k, str(v)) for k, v in versions.items()])


def _evaluation_dir(run: RunDir) -> Path | None:
    """The training run's own test (else validation) evaluation, else the latest one
    written by ``resnetkit evaluate``."""
    for split in ("test", "val"):
        folder = run.evaluation(split)
        if (folder / "metrics.json").is_file():
            return folder
    others = sorted(
        (p.parent for p in run.evaluations.glob("*/metrics.json")),
        key=lambda p: (p / "metrics.json").stat().st_mtime,
    )
    return others[-1] if others else None


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return f'<p class="muted">({_e(path.name)} missing)</p>'
    return _img_bytes(path.read_bytes(), alt)


def _img_bytes(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{encoded}">'


def _table(header: list[str], rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header) if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{_e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf8")) if path.is_file() else None


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _number(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min" if hours else f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"
