"""Boxes as (x1, y1, x2, y2) pixels: IoU, and RetinaNet's box coding (torchvision's
``BoxCoder`` with weights 1, 1, 1, 1: centre offsets in anchor widths and heights, log
size ratios; decoded sizes clipped at log(1000 / 16), as torchvision does)."""

from __future__ import annotations

import math

import numpy as np

CLIP = math.log(1000.0 / 16)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` intersection over union."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def _centres(boxes):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode(boxes, anchors, ops=np):
    """The regression targets ``[..., 4]`` (dx, dy, dw, dh) of ``boxes`` on ``anchors``;
    ``ops``: NumPy, or ``keras.ops`` in a graph."""
    ax, ay, aw, ah = _centres(anchors)
    bx, by, bw, bh = _centres(boxes)
    return ops.stack([(bx - ax) / aw, (by - ay) / ah, ops.log(bw / aw), ops.log(bh / ah)], -1)


def decode(deltas, anchors, ops=np):
    """Boxes from ``deltas`` on ``anchors``; ``ops``: NumPy, or ``keras.ops`` in a graph."""
    ax, ay, aw, ah = _centres(anchors)
    dx, dy = deltas[..., 0], deltas[..., 1]
    dw, dh = ops.minimum(deltas[..., 2], CLIP), ops.minimum(deltas[..., 3], CLIP)
    cx, cy = dx * aw + ax, dy * ah + ay
    w, h = ops.exp(dw) * aw, ops.exp(dh) * ah
    return ops.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)
