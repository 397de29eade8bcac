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
    """The first ``count`` images of ``split`` as ``samples/NNNN.png`` (``draw_pair``), and
    the ``count`` worst (``worst_images``) as ``worst/NNNN.png``."""
    by_image: dict[int, list[dict]] = {}
    for d in detections:
        if d["score"] >= MIN_SCORE:
            by_image.setdefault(d["image_id"], []).append(d)
    written = []
    ids = source.category_ids or list(range(1, source.num_classes + 1))
    for name, index in (("samples", range(min(count, len(split)))),
                        ("worst", worst_images(split, by_image, ids, count))):  # fmt: skip
        out = folder / name
        out.mkdir(parents=True, exist_ok=True)
        for i in index:
            path = out / f"{i:04d}.png"
            draw_pair(split, i, by_image.get(i, []), source).save(path)
            written.append(path)
    return written


def draw_pair(split: BoxSet, i: int, found: list[dict], source: BoxSource) -> Image.Image:
    """Image ``i`` of ``split`` with its true boxes (green) beside ``found`` (red; COCO
    results rows in its own pixels)."""
    ids = source.category_ids or list(range(1, source.num_classes + 1))
    name_of = dict(zip(ids, source.class_names, strict=True))
    with Image.open(split.images[i]) as im:
        image = im.convert("RGB")
    names = [source.class_names[int(k)] for k in split.classes[i]]
    truth = draw_boxes(image, split.boxes[i], names, TRUE)
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in found)])
    guess = draw_boxes(image, boxes.reshape(-1, 4), [name_of[d["category_id"]] for d in found],
                       PREDICTED, [d["score"] for d in found])  # fmt: skip
    pair = Image.new("RGB", (image.width * 2 + 4, image.height), (255, 255, 255))
    pair.paste(truth, (0, 0))
    pair.paste(guess, (image.width + 4, 0))
    return pair


def worst_images(split: BoxSet, by_image: dict[int, list[dict]], category_ids: list[int],
                 count: int, iou_threshold: float = 0.5) -> list[int]:  # fmt: skip
    """The ``count`` images with the most errors among ``by_image``'s detections (COCO
    results rows): true boxes that no detection of their class finds at IoU ≥
    ``iou_threshold``, plus detections that find none; ties by image order. Images without
    an error are left out."""
    from resnetkit.tasks.detect.boxes import iou

    errors = []
    for i in range(len(split)):
        truth = np.asarray(split.boxes[i], np.float32).reshape(-1, 4)
        truth_ids = np.array([category_ids[int(k)] for k in split.classes[i]], np.int64)
        found = by_image.get(i, [])
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in found)],
                         np.float32).reshape(-1, 4)  # fmt: skip
        found_ids = np.array([d["category_id"] for d in found], np.int64)
        hits = (iou(truth, boxes) >= iou_threshold) & (truth_ids[:, None] == found_ids[None, :])
        missed, wrong = int((~hits.any(axis=1)).sum()), int((~hits.any(axis=0)).sum())
        if missed + wrong:
            errors.append((-(missed + wrong), i))
    return [i for _, i in sorted(errors)[:count]]
