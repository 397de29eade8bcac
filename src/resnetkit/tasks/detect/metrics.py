"""How good a detector is: during training, a cheap anchor-level F1 that validation tracks
for the best checkpoint; at the end, COCO's mAP by pycocotools (``coco_scores``).

``AnchorF1``: over the anchors that are not ignored, a detection is an anchor whose best
class score is at least 0.5; it is right when the anchor is matched to a box of that class.
F1 = 2·right / (detections + matched anchors). It rises as classification of the anchors
improves and needs no decoding or NMS, so it costs nothing per step; the mAP that the
evaluation reports is computed from the final boxes, by pycocotools alone.
"""

from __future__ import annotations

import contextlib
import io

import keras
import numpy as np
import tensorflow as tf

from resnetkit.tasks.detect.targets import IGNORED

AREA_NAMES = ("map_small", "map_medium", "map_large")


@keras.saving.register_keras_serializable(package="resnetkit")
class AnchorF1(keras.metrics.Metric):
    """Anchor-level F1 at score 0.5 (see the module doc)."""

    def __init__(self, name: str = "anchor_f1", threshold: float = 0.5, **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = float(threshold)
        self.right = self.add_variable((), "zeros", name="right")
        self.detected = self.add_variable((), "zeros", name="detected")
        self.matched = self.add_variable((), "zeros", name="matched")

    def update_state(self, y_true, y_pred, sample_weight=None):
        classes = tf.cast(y_true["classes"], tf.int32)
        scores = tf.sigmoid(tf.cast(y_pred["cls_logits"], tf.float32))
        best = tf.reduce_max(scores, axis=-1)
        label = tf.cast(tf.argmax(scores, axis=-1), tf.int32)
        counted = classes != IGNORED
        detected = counted & (best >= self.threshold)
        self.right.assign_add(tf.reduce_sum(tf.cast(detected & (label == classes), tf.float32)))
        self.detected.assign_add(tf.reduce_sum(tf.cast(detected, tf.float32)))
        self.matched.assign_add(tf.reduce_sum(tf.cast(classes >= 0, tf.float32)))

    def result(self):
        return 2 * self.right / tf.maximum(self.detected + self.matched, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


def coco_ground_truth(images, class_names: list[str], category_ids: list[int] | None):
    """A pycocotools ``COCO`` of a ``BoxSet``'s boxes (image id = position in the split;
    crowd boxes marked so that COCOeval ignores them, as on COCO itself)."""
    from pycocotools.coco import COCO

    ids = category_ids or list(range(1, len(class_names) + 1))
    annotations = []
    for i, (boxes, classes, crowd) in enumerate(
        zip(images.boxes, images.classes, images.crowd, strict=True)
    ):
        for box, c, is_crowd in zip(boxes, classes, crowd, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": i, "category_id": ids[int(c)],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                "iscrowd": int(is_crowd),
            })  # fmt: skip
    data = {
        "images": [{"id": i, "height": h, "width": w, "file_name": str(p)}
                   for i, (p, (h, w)) in enumerate(zip(images.images, images.sizes,
                                                      strict=True))],
        "annotations": annotations,
        "categories": [{"id": k, "name": n} for k, n in zip(ids, class_names, strict=True)],
    }  # fmt: skip
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_scores(truth, detections: list[dict], class_names: list[str]) -> dict:
    """COCOeval's box figures for ``detections`` (COCO results format) against ``truth``
    (a pycocotools ``COCO``): ``map`` (AP at IoU .50:.95), ``map_50``, ``map_75``, by object
    size, and AP per class; pycocotools' printed table as ``summary``."""
    from pycocotools.cocoeval import COCOeval

    if not detections:  # COCO.loadRes refuses an empty list; nothing detected scores 0
        return {"map": 0.0, "map_50": 0.0, "map_75": 0.0, **dict.fromkeys(AREA_NAMES, 0.0),
                "per_class_ap": dict.fromkeys(class_names, 0.0),
                "per_class_ap_50": dict.fromkeys(class_names, 0.0), "pr_curves_50": {},
                "detections": 0,
                "summary": "no detections"}  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = truth.loadRes(detections)
        evaluation = COCOeval(truth, result, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [float(max(v, 0.0)) for v in evaluation.stats]
    # precision: [IoU thresholds, recall points, classes, areas, max detections]
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class, per_class_50, curves = {}, {}, {}
    for k, name in enumerate(class_names):
        p = precision[:, :, k]
        per_class[name] = float(np.mean(p[p > -1])) if (p > -1).any() else None
        if (p[0] > -1).any():  # IoU 0.5: the curve and its AP
            curves[name] = [round(float(max(v, 0.0)), 4) for v in p[0]]
            per_class_50[name] = float(np.mean(p[0][p[0] > -1]))
    return {
        "map": stats[0], "map_50": stats[1], "map_75": stats[2],
        **dict(zip(AREA_NAMES, stats[3:6], strict=True)),
        "mar_100": stats[8], "per_class_ap": per_class, "per_class_ap_50": per_class_50,
        "pr_curves_50": curves, "detections": len(detections), "summary": printed.getvalue(),
    }  # fmt: skip
