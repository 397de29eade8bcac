"""``resnetkit predict``: image files in, top-k classes out (table, CSV or JSON).

Unreadable files become rows with the reason instead of stopping the batch.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from resnetkit.data.sources import MAX_PIXELS
from resnetkit.tasks.classify.predictor import Classifier, read_images


def predict_files(
    classifier: Classifier,
    paths: list[Path],
    *,
    top_k: int = 5,
    batch_size: int = 32,
    tta: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> list[dict]:
    """One row per file, in the given order: ``{"file", "top": [{"class", "probability"}]}``
    or ``{"file", "error"}``. Files are decoded and predicted ``batch_size`` at a time."""
    k = top_k
    rows: dict[str, dict] = {}
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images, good, bad = read_images(classifier, chunk, max_pixels)
        for b in bad:
            rows[b.path] = {"file": b.path, "error": b.reason}
        if images:
            probs = classifier.predict_arrays(images, batch_size=batch_size, tta=tta)
            for path, p in zip(good, probs, strict=True):
                rows[path] = {"file": path, "top": top_classes(p, classifier.class_names, k)}
    return [rows[str(p)] for p in paths]


def top_classes(probs: np.ndarray, class_names: list[str], k: int) -> list[dict]:
    """The ``k`` most probable classes, best first: ``[{"class", "probability"}]``."""
    order = np.argsort(probs)[::-1][: max(1, min(k, len(class_names)))]
    return [{"class": class_names[i], "probability": float(probs[i])} for i in order]


def format_table(rows: list[dict]) -> str:
    """One line per file: the top class and probability, then the runners-up."""
    width = max((len(r["file"]) for r in rows), default=4)
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"{r['file']:<{width}}  UNREADABLE: {r['error']}")
            continue
        best, *rest = r["top"]
        others = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in rest)
        line = f"{r['file']:<{width}}  {best['class']} {best['probability']:.3f}"
        lines.append(line + (f"   ({others})" if others else ""))
    return "\n".join(lines)


def write_rows(rows: list[dict], path: str | Path) -> Path:
    """``.csv`` (file, rank, class, probability, error: one line per file and rank) or
    ``.json`` (the rows as they are), chosen by the extension."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(rows, indent=1, ensure_ascii=False)
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["file", "rank", "class", "probability", "error"])
        for r in rows:
            if "error" in r:
                writer.writerow([r["file"], "", "", "", r["error"]])
            for rank, t in enumerate(r.get("top", []), start=1):
                writer.writerow([r["file"], rank, t["class"], f"{t['probability']:.6f}", ""])
        text = buffer.getvalue()
    else:
        raise ValueError(f"--output {path}: use a .csv or .json file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf8")
    return path
