"""Evaluate a classifier on one split and write what a person needs to judge it.

    OUT/
        metrics.json                     accuracy, top-5, per-class P/R/F1, averages, ECE, ...
        predictions.csv                  one row per image: file, true, predicted, confidence
        confusion_matrix.png             raw counts
        confusion_matrix_normalized.png  each row divided by its class's support (recall)
        reliability.png                  calibration: accuracy against confidence
        mistakes.png                     the most confident mistakes
        samples.npz                      a few images with labels, for the report's Grad-CAM

The same code serves ``resnetkit evaluate`` and the test evaluation at the end of every
training run, with the training run's own data pipeline (``build_dataset``), so both see
the images exactly as validation did.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from resnetkit.data.checks import decode_image
from resnetkit.data.pipeline import BadImageLog, build_dataset
from resnetkit.data.sources import MAX_PIXELS, ImageSet
from resnetkit.files import atomic_path, write_atomic
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.classify.metrics import classification_metrics
from resnetkit.tasks.classify.predict import predict_dataset

MISTAKES_SHOWN = 16
SAMPLES_KEPT = 8


@dataclass
class Evaluation:
    """Predictions on one split and the metrics computed from them."""

    metrics: dict
    probs: np.ndarray
    labels: np.ndarray
    split: ImageSet  # the images evaluated, in prediction order (unreadable files left out)
    channels: int
    skipped: list  # BadImage: files that could not be decoded

    def image(self, i: int) -> np.ndarray:
        """The ``i``-th evaluated image as decoded uint8 (H, W, C)."""
        if self.split.arrays is not None:
            return self.split.arrays[i]
        return decode_image(self.split.paths[i], self.channels, MAX_PIXELS)

    def name(self, i: int) -> str:
        return self.split.paths[i] if self.split.paths is not None else f"#{i}"


def evaluate_split(
    model: keras.Model,
    split: ImageSet,
    class_names: list[str],
    prep: Preprocessing,
    *,
    batch_size: int = 128,
    tta: bool = False,
) -> Evaluation:
    """Predict every image of ``split`` (labels index ``class_names``) and measure."""
    if not len(split):
        raise ValueError("nothing to evaluate: the split holds no images")
    channels = int(model.input_shape[-1])
    bad_log = BadImageLog()
    ds = build_dataset(split, prep, channels=channels, batch_size=batch_size, bad_log=bad_log)
    probs, labels = predict_dataset(model, ds, tta=tta)
    skipped = bad_log.items
    if skipped:  # the pipeline left them out: keep the split aligned with the predictions
        lost = {b.path for b in skipped}
        kept = np.asarray([i for i, p in enumerate(split.paths) if p not in lost], np.int64)
        split = split.subset(kept)
    metrics = classification_metrics(probs, labels, class_names)
    metrics.update({"tta": tta, "skipped_files": [b.path for b in skipped]})
    return Evaluation(metrics, probs, labels, split, channels, skipped)


def write_evaluation(ev: Evaluation, out: str | Path, *, title: str = "") -> Path:
    """metrics.json, predictions.csv, the charts and samples.npz into ``out``."""
    from resnetkit import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = ev.metrics["class_names"]
    matrix = np.asarray(ev.metrics["confusion_matrix"])
    suffix = f" — {title}" if title else ""
    plots.confusion_matrix(matrix, names, out / "confusion_matrix.png", title=f"counts{suffix}")
    plots.confusion_matrix(
        matrix,
        names,
        out / "confusion_matrix_normalized.png",
        normalized=True,
        title=f"share of each true class{suffix}",
    )
    plots.reliability_diagram(ev.metrics["calibration"], out / "reliability.png", title=title)
    wrong = _confident_mistakes(ev)
    plots.image_grid(
        [ev.image(i) for i in wrong],
        [
            f"{names[ev.probs[i].argmax()]} {ev.probs[i].max():.0%}\n(true: {names[ev.labels[i]]})"
            for i in wrong
        ],
        out / "mistakes.png",
        title=f"most confident mistakes{suffix}" if wrong else "no mistakes",
    )
    write_atomic(out / "predictions.csv", _predictions_csv(ev).encode())
    _save_samples(ev, out / "samples.npz")
    write_atomic(out / "metrics.json", json.dumps(ev.metrics, indent=1).encode())
    return out


def _confident_mistakes(ev: Evaluation) -> list[int]:
    predicted = ev.probs.argmax(-1)
    wrong = np.flatnonzero(predicted != ev.labels)
    order = np.argsort(-ev.probs[wrong].max(-1), kind="stable")
    return wrong[order][:MISTAKES_SHOWN].tolist()


def _predictions_csv(ev: Evaluation) -> str:
    names = ev.metrics["class_names"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", "true", "predicted", "confidence", "correct"])
    for i, (p, y) in enumerate(zip(ev.probs, ev.labels, strict=True)):
        k = int(p.argmax())
        writer.writerow([ev.name(i), names[y], names[k], f"{p[k]:.4f}", int(k == y)])
    return buffer.getvalue()


def _save_samples(ev: Evaluation, path: Path) -> None:
    """A few evaluated images (one per class first, at the network's input size) for the
    report's Grad-CAM panel; the report then needs no access to the data."""
    picked: list[int] = []
    for k in range(len(ev.metrics["class_names"])):
        hits = np.flatnonzero(ev.labels == k)
        if len(hits) and len(picked) < SAMPLES_KEPT:
            picked.append(int(hits[0]))
    rest = [i for i in range(len(ev.labels)) if i not in picked]
    picked += rest[: SAMPLES_KEPT - len(picked)]
    images = [ev.image(i) for i in picked]
    same_shape = len({im.shape for im in images}) == 1
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            images=np.stack(images) if same_shape else np.array(images, dtype=object),
            labels=ev.labels[picked],
            names=np.array([ev.name(i) for i in picked]),
        )


def format_metrics(metrics: dict) -> str:
    """The readable table ``resnetkit evaluate`` prints."""
    rows = [("class", "precision", "recall", "F1", "support")]
    for name, m in metrics["classes"].items():
        rows.append(
            (
                name,
                f"{m['precision']:.4f}",
                f"{m['recall']:.4f}",
                f"{m['f1']:.4f}",
                f"{m['support']:,}",
            )
        )
    rows.append(("", "", "", "", ""))
    for name, m in metrics["averages"].items():
        rows.append(
            (
                f"{name} avg",
                f"{m['precision']:.4f}",
                f"{m['recall']:.4f}",
                f"{m['f1']:.4f}",
                f"{m['support']:,}",
            )
        )
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>9}  {r[2]:>9}  {r[3]:>9}  {r[4]:>9}".rstrip() for r in rows]
    top5 = metrics.get("top5_accuracy")
    lines += [
        "",
        f"images {metrics['images']:,}"
        + (" (flip TTA)" if metrics.get("tta") else "")
        + f"   top-1 {metrics['accuracy']:.4f}"
        + (f"   top-5 {top5:.4f}" if top5 is not None else "")
        + f"   NLL {metrics['nll']:.4f}   ECE {metrics['calibration']['ece']:.4f}",
    ]
    if metrics.get("skipped_files"):
        lines.append(f"unreadable files left out: {len(metrics['skipped_files'])}")
    return "\n".join(lines)
