"""Anchor matching and RetinaNet's training targets, with TensorFlow ops (they run in the
tf.data pipeline, per image, on the anchors of the fixed training size).

Matching is torchvision's ``Matcher(0.5, 0.4, allow_low_quality_matches=True)``: an anchor
takes the box it overlaps most; below IoU 0.4 it is background, from 0.4 to 0.5 it is
ignored; and every box's best anchors (ties included) keep their match whatever its IoU, so
that no box goes without an anchor.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from resnetkit.tasks.detect import boxes as box_coding

BACKGROUND, IGNORED = -1, -2


def pairwise_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``[len(a), len(b)]`` IoU of (x1, y1, x2, y2) boxes."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = tf.maximum(a[:, None, :2], b[None, :, :2])
    rb = tf.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = tf.maximum(rb - lt, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / tf.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def match(gt_boxes: tf.Tensor, anchors: tf.Tensor, positive: float = 0.5,
          negative: float = 0.4) -> tf.Tensor:  # fmt: skip
    """Per anchor: the index of its box, ``BACKGROUND`` or ``IGNORED``."""
    count = tf.shape(anchors)[0]
    if_empty = tf.fill([count], BACKGROUND)

    def matched():
        quality = pairwise_iou(gt_boxes, anchors)  # [G, A]
        best = tf.reduce_max(quality, axis=0)
        which = tf.argmax(quality, axis=0, output_type=tf.int32)
        out = tf.where(best < negative, BACKGROUND, tf.where(best < positive, IGNORED, which))
        # Each box's best anchors, ties included, keep their own best box.
        per_box = tf.reduce_max(quality, axis=1, keepdims=True)
        is_best = tf.reduce_any(quality == per_box, axis=0)
        return tf.where(is_best, which, out)

    return tf.cond(tf.shape(gt_boxes)[0] > 0, matched, lambda: if_empty)


def encode_targets(gt_boxes: tf.Tensor, gt_classes: tf.Tensor, anchors: tf.Tensor,
                   positive: float = 0.5, negative: float = 0.4) -> dict:  # fmt: skip
    """One image's targets: ``classes`` per anchor (a class id, ``BACKGROUND`` or
    ``IGNORED``) and ``boxes``, the deltas of the matched box (zeros elsewhere)."""
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    matches = match(gt_boxes, anchors, positive, negative)
    # Unmatched anchors point at a padding entry, so an image with no box gathers nothing.
    index = tf.where(matches >= 0, matches, tf.shape(gt_boxes)[0])
    padded = tf.concat([tf.cast(gt_classes, tf.int32), [0]], 0)
    classes = tf.where(matches >= 0, tf.gather(padded, index), matches)
    matched = tf.gather(tf.concat([gt_boxes, [[0.0, 0.0, 1.0, 1.0]]], 0), index)
    deltas = box_coding.encode(matched, anchors, ops=keras.ops)
    deltas = tf.where((matches >= 0)[:, None], deltas, 0.0)
    return {"classes": classes, "boxes": deltas}
