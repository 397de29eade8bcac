"""RetinaNet's loss, as torchvision computes it: per image, the sigmoid focal loss (Lin et
al. 2017: α = 0.25, γ = 2) summed over every anchor that is not ignored, and the box loss
summed over the matched anchors (L1 on the deltas, or GIoU on the decoded boxes), each
divided by the image's matched anchors (at least 1, so that an image with no object gives
a finite loss); the batch's mean."""

from __future__ import annotations

import keras
import tensorflow as tf

from resnetkit.tasks.detect import boxes as box_coding
from resnetkit.tasks.detect.targets import IGNORED

BOX_LOSSES = ("l1", "giou")


def focal_loss(classes, logits, alpha: float = 0.25, gamma: float = 2.0):
    """``[N]``: each image's focal loss summed over its anchors that are not ignored."""
    k = tf.shape(logits)[-1]
    positive = classes >= 0
    onehot = tf.one_hot(tf.maximum(classes, 0), k) * tf.cast(positive, tf.float32)[..., None]
    p = tf.sigmoid(logits)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=onehot, logits=logits)
    p_t = p * onehot + (1 - p) * (1 - onehot)
    alpha_t = alpha * onehot + (1 - alpha) * (1 - onehot)
    loss = alpha_t * ce * (1 - p_t) ** gamma
    keep = tf.cast(classes != IGNORED, tf.float32)[..., None]
    return tf.reduce_sum(loss * keep, axis=[1, 2])


def giou(a, b):
    """Generalized IoU of matching (x1, y1, x2, y2) boxes (Rezatofighi et al. 2019)."""
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    wh = tf.maximum(tf.minimum(a[..., 2:], b[..., 2:]) - tf.maximum(a[..., :2], b[..., :2]), 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    hull = tf.maximum(a[..., 2:], b[..., 2:]) - tf.minimum(a[..., :2], b[..., :2])
    enclosing = hull[..., 0] * hull[..., 1]
    iou = inter / tf.maximum(union, 1e-7)
    return iou - (enclosing - union) / tf.maximum(enclosing, 1e-7)


def box_loss(classes, target_deltas, deltas, anchors=None, kind: str = "l1"):
    """``[N]``: each image's box loss summed over its matched anchors."""
    positive = tf.cast(classes >= 0, tf.float32)
    if kind == "l1":
        per_anchor = tf.reduce_sum(tf.abs(deltas - target_deltas), axis=-1)
    elif kind == "giou":
        truth = box_coding.decode(target_deltas, anchors, ops=keras.ops)
        guess = box_coding.decode(deltas, anchors, ops=keras.ops)
        per_anchor = 1 - giou(guess, truth)
    else:
        raise ValueError(f"box loss must be one of {', '.join(BOX_LOSSES)}; got {kind!r}")
    return tf.reduce_sum(per_anchor * positive, axis=1)


def retinanet_loss(targets: dict, outputs: dict, anchors=None, *, alpha: float = 0.25,
                   gamma: float = 2.0, box: str = "l1") -> tuple[tf.Tensor, dict]:  # fmt: skip
    """The batch's loss and its two parts; ``targets``: ``encode_targets``' per image,
    batched; ``outputs``: the ``Detector``'s; ``anchors``: ``[A, 4]`` (GIoU needs them)."""
    classes = tf.cast(targets["classes"], tf.int32)
    logits = tf.cast(outputs["cls_logits"], tf.float32)
    deltas = tf.cast(outputs["bbox_regression"], tf.float32)
    matched = tf.maximum(tf.reduce_sum(tf.cast(classes >= 0, tf.float32), axis=1), 1.0)
    cls = tf.reduce_mean(focal_loss(classes, logits, alpha, gamma) / matched)
    reg = tf.reduce_mean(box_loss(classes, targets["boxes"], deltas, anchors, box) / matched)
    return cls + reg, {"classification": cls, "box": reg}


@keras.saving.register_keras_serializable(package="resnetkit")
class RetinaNetLoss(keras.losses.Loss):
    """``retinanet_loss`` as a Keras loss of the ``Detector``'s target and output dicts."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, box: str = "l1",
                 anchors=None, name: str = "retinanet_loss", **kwargs):  # fmt: skip
        super().__init__(name=name, **kwargs)
        if box not in BOX_LOSSES:
            raise ValueError(f"box loss must be one of {', '.join(BOX_LOSSES)}; got {box!r}")
        if box == "giou" and anchors is None:
            raise ValueError("the GIoU box loss needs the anchors")
        self.alpha, self.gamma, self.box = float(alpha), float(gamma), box
        self.anchors = None if anchors is None else tf.constant(anchors, tf.float32)

    def call(self, y_true, y_pred):
        return retinanet_loss(y_true, y_pred, self.anchors, alpha=self.alpha,
                              gamma=self.gamma, box=self.box)[0]  # fmt: skip

    def get_config(self) -> dict:
        # The anchors follow from the canvas: the task passes them again when it compiles.
        return {"alpha": self.alpha, "gamma": self.gamma, "box": self.box, "name": self.name}
