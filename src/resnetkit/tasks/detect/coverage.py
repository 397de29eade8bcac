"""Do the anchors fit the data? The share of ground-truth boxes that some anchor overlaps
at IoU ≥ the positive threshold (the **anchor coverage**): a box below it is matched only
through the low-quality rule, if at all, and small objects are missed when the smallest
anchor is too large for them (fizyr/keras-retinanet#202).

``choose_anchor_sizes`` picks, for the run's canvas and pyramid, the smallest anchor size
(each level twice the one below, three scales a level, as torchvision) that covers the
most training boxes, so that data of small images or small objects is not trained with
anchors made for 800-pixel COCO images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resnetkit.data.boxes import BoxSet
from resnetkit.tasks.detect.anchors import AnchorConfig, anchors

SMALLEST = (4, 6, 8, 11, 16, 23, 32, 45, 64)  # candidate smallest anchors, ×√2 apart
TORCHVISION = 32  # torchvision's smallest (P3) anchor
SAMPLE = 4000  # boxes the choice is made on (spread over the split)


def canvas_boxes(images: BoxSet, canvas: int) -> tuple[np.ndarray, np.ndarray]:
    """Every non-crowd box as the canvas sees it (the image's longer side → ``canvas``),
    and its class."""
    boxes, classes = [], []
    for b, c, crowd, (h, w) in zip(images.boxes, images.classes, images.crowd, images.sizes,
                                   strict=True):  # fmt: skip
        keep = ~np.asarray(crowd, bool)
        boxes.append(np.asarray(b, np.float32).reshape(-1, 4)[keep] * (canvas / max(h, w)))
        classes.append(np.asarray(c, np.int64)[keep])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    return np.concatenate(boxes), np.concatenate(classes)


def best_iou(boxes: np.ndarray, grid: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Each box's highest IoU with any anchor of ``grid`` (numpy, in chunks of boxes)."""
    out = np.zeros(len(boxes), np.float32)
    area_g = (grid[:, 2] - grid[:, 0]) * (grid[:, 3] - grid[:, 1])
    for i in range(0, len(boxes), chunk):
        b = boxes[i : i + chunk]
        lt = np.maximum(b[:, None, :2], grid[None, :, :2])
        rb = np.minimum(b[:, None, 2:], grid[None, :, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[..., 0] * wh[..., 1]
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        out[i : i + chunk] = (inter / (area_b[:, None] + area_g[None] - inter)).max(axis=1)
    return out


@dataclass
class Coverage:
    """The anchor coverage of a set of boxes, overall and per class."""

    threshold: float
    covered: float  # share of all boxes
    per_class: dict[str, float]  # share of each class's boxes (classes with boxes)
    boxes: int

    def low(self, below: float = 0.95) -> list[str]:
        """The classes whose coverage is under ``below``."""
        return [k for k, v in self.per_class.items() if v < below]


def coverage(images: BoxSet, class_names: list[str], config: AnchorConfig, canvas: int,
             grids: list[tuple[int, int]], threshold: float = 0.5) -> Coverage:  # fmt: skip
    """The coverage of ``images``' boxes by the anchors of ``config`` on the canvas."""
    boxes, classes = canvas_boxes(images, canvas)
    hit = best_iou(boxes, anchors(config, (canvas, canvas), grids)) >= threshold
    per_class = {name: float(hit[classes == k].mean())
                 for k, name in enumerate(class_names) if (classes == k).any()}  # fmt: skip
    return Coverage(threshold, float(hit.mean()) if len(hit) else 1.0, per_class, len(hit))


def doubling_sizes(smallest: float, levels: int = 5) -> tuple[tuple[int, ...], ...]:
    """Per level, ``smallest × 2^level`` at scales 2^0, 2^(1/3), 2^(2/3) (torchvision's rule)."""
    return tuple(tuple(int(smallest * 2**level * 2 ** (k / 3)) or 1 for k in range(3))
                 for level in range(levels))  # fmt: skip


def choose_anchor_sizes(images: BoxSet, canvas: int, grids: list[tuple[int, int]],
                        ratios: tuple[float, ...], threshold: float = 0.5,
                        ) -> tuple[AnchorConfig, float, str]:  # fmt: skip
    """The candidate of ``SMALLEST`` whose anchors cover the most training boxes (ties and
    near-ties, within half a percent, go to torchvision's 32); the config, its coverage
    and a line saying why."""
    boxes, _ = canvas_boxes(images, canvas)
    if len(boxes) > SAMPLE:
        boxes = boxes[np.linspace(0, len(boxes) - 1, SAMPLE).astype(int)]
    if not len(boxes):
        return AnchorConfig(ratios=ratios), 1.0, "anchors: torchvision's (no boxes to fit)"
    scores = {}
    for s in SMALLEST:
        config = AnchorConfig(doubling_sizes(s, len(grids)), tuple(ratios))
        grid = anchors(config, (canvas, canvas), grids)
        scores[s] = float((best_iou(boxes, grid) >= threshold).mean())
    best = max(scores.values())
    pick = TORCHVISION if scores[TORCHVISION] >= best - 0.005 else max(scores, key=scores.get)
    config = AnchorConfig(doubling_sizes(pick, len(grids)), tuple(ratios))
    line = (
        f"anchors: smallest {pick} px, doubling per level (coverage {scores[pick]:.1%} of "
        f"{len(boxes):,} training boxes at IoU ≥ {threshold:g}; torchvision's 32 px: "
        f"{scores[TORCHVISION]:.1%}; detect.anchor_sizes overrides)"
    )
    return config, scores[pick], line
