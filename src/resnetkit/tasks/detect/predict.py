"""Pictures of detections: boxes drawn on the image with class names and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from resnetkit.data.boxes import BoxSet, BoxSource

TRUE = (0, 200, 0)
PREDICTED = (230, 40, 40)
MIN_SCORE = 0.3  # detections drawn: at least this score


def draw_boxes(image: Image.Image, boxes, labels: list[str], color, scores=None) -> Image.Image:
    """``image`` (RGB copy) with ``boxes`` (x1, y1, x2, y2, its pixels) and their labels."""
    out = image.convert("RGB")
    pen = ImageDraw.Draw(out)
    width = max(1, round(max(out.size) / 200))
    for i, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in box)
        pen.rectangle([x1, y1, x2, y2], outline=color, width=width)
        text = label if scores is None else f"{label} {float(scores[i]):.2f}"
        pen.text((x1 + 1, max(0.0, y1 - 11)), text, fill=color)
    return out


def draw_samples(split: BoxSet, detections: list[dict], source: BoxSource, folder: Path,
                 count: int = 8) -> list[Path]:  # fmt: skip
    """The first ``count`` images of ``split`` with their true boxes (green) and the
    detections of score ≥ ``MIN_SCORE`` (red), side by side, as ``samples/NNNN.png``."""
    ids = source.category_ids or list(range(1, source.num_classes + 1))
    name_of = dict(zip(ids, source.class_names, strict=True))
    out = folder / "samples"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(min(count, len(split))):
        with Image.open(split.images[i]) as im:
            image = im.convert("RGB")
        names = [source.class_names[int(k)] for k in split.classes[i]]
        truth = draw_boxes(image, split.boxes[i], names, TRUE)
        mine = [d for d in detections if d["image_id"] == i and d["score"] >= MIN_SCORE]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in mine)])
        guess = draw_boxes(image, boxes.reshape(-1, 4), [name_of[d["category_id"]] for d in mine],
                           PREDICTED, [d["score"] for d in mine])  # fmt: skip
        pair = Image.new("RGB", (image.width * 2 + 4, image.height), (255, 255, 255))
        pair.paste(truth, (0, 0))
        pair.paste(guess, (image.width + 4, 0))
        path = out / f"{i:04d}.png"
        pair.save(path)
        written.append(path)
    return written
