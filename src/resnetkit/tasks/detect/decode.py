"""Decoding and non-maximum suppression inside the model's graph, so that every export
returns final boxes (keras-hub's RetinaNet leaves NMS out of its exported graph).

``DecodeDetections`` does what torchvision's ``RetinaNet.postprocess_detections`` does, with
TensorFlow's own ops: per level, the ``top_k`` best (anchor, class) sigmoid scores above
``score_threshold``, decoded on their anchors and clipped to the image; then over all
levels, NMS per class (boxes of different classes never suppress each other: each class
is moved to its own coordinate range, as torchvision's ``batched_nms`` does) at
``nms_iou``, the best ``detections`` kept. Outputs per image: ``boxes`` (x1, y1, x2, y2 in
input pixels), ``scores``, ``classes`` and ``count``, padded to ``detections``.
"""

from __future__ import annotations

import keras

from resnetkit.tasks.detect import boxes as box_coding
from resnetkit.tasks.detect.anchors import AnchorConfig


@keras.saving.register_keras_serializable(package="resnetkit")
class DecodeDetections(keras.layers.Layer):
    """``[image, cls_logits, bbox_regression, P3, …, P7] -> {boxes, scores, classes, count}``."""

    def __init__(self, anchors: dict | None = None, score_threshold: float = 0.05,
                 top_k: int = 1000, nms_iou: float = 0.5, detections: int = 300,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.anchor_config = AnchorConfig.from_dict(anchors)
        self.score_threshold = float(score_threshold)
        self.top_k = int(top_k)
        self.nms_iou = float(nms_iou)
        self.detections = int(detections)

    def call(self, inputs):
        import tensorflow as tf

        image, logits, deltas, *levels = inputs
        logits = tf.cast(logits, tf.float32)
        deltas = tf.cast(deltas, tf.float32)
        size = tf.shape(image)[1:3]
        classes = tf.shape(logits)[-1]
        per_location = self.anchor_config.per_location
        start = 0
        picked_boxes, picked_scores, picked_labels = [], [], []
        for level, feature in enumerate(levels):
            grid = tf.shape(feature)[1:3]
            count = grid[0] * grid[1] * per_location
            anchors = self._anchors(level, size, grid)
            scores = tf.sigmoid(logits[:, start : start + count])
            flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
            best, index = tf.math.top_k(flat, tf.minimum(self.top_k, count * classes))
            anchor_index = index // classes
            decoded = box_coding.decode(
                tf.gather(deltas[:, start : start + count], anchor_index, batch_dims=1),
                tf.gather(anchors, anchor_index), ops=keras.ops,
            )  # fmt: skip
            picked_boxes.append(_clip(decoded, size))
            picked_scores.append(best)
            picked_labels.append(index % classes)
            start += count
        return self._nms(tf.concat(picked_boxes, 1), tf.concat(picked_scores, 1),
                         tf.concat(picked_labels, 1))  # fmt: skip

    def _anchors(self, level: int, size, grid):
        """Level ``level``'s anchors for an input of ``size`` (as ``anchors.anchors``)."""
        import tensorflow as tf

        stride = tf.cast(size // grid, tf.float32)
        ys = tf.cast(tf.range(grid[0]), tf.float32) * stride[0]
        xs = tf.cast(tf.range(grid[1]), tf.float32) * stride[1]
        y, x = tf.meshgrid(ys, xs, indexing="ij")
        shifts = tf.reshape(tf.stack([x, y, x, y], axis=-1), [-1, 1, 4])
        base = tf.constant(self.anchor_config.base(level), tf.float32)
        return tf.reshape(shifts + base[None], [-1, 4])

    def _nms(self, boxes, scores, labels):
        """Per image and class NMS as one batched ``non_max_suppression_padded``: within an
        image each class is moved to its own coordinate range, so no two classes overlap
        (torchvision's ``batched_nms`` trick), and the op suppresses each image's boxes
        apart from the others'. One op and no loop over images: ONNX and LiteRT take it as
        it is, where a ``map_fn`` over images becomes a Loop that onnxruntime rejects; and
        its work grows with the batch, not with its square, as one NMS over the boxes of
        every image would."""
        import tensorflow as tf

        # Each image's own largest coordinate: its boxes move alike in any batch.
        span = tf.reduce_max(boxes, axis=[1, 2], keepdims=True) + 1
        offset = tf.cast(labels, tf.float32)[..., None] * span
        d = self.detections
        keep, count = tf.image.non_max_suppression_padded(
            boxes + offset, scores, d, iou_threshold=self.nms_iou,
            score_threshold=self.score_threshold, pad_to_max_output_size=True,
        )  # fmt: skip
        filled = tf.range(d)[None, :] < count[:, None]

        def pick(values, fill):
            got = tf.gather(values, keep, batch_dims=1)
            mask = filled[..., None] if values.shape.rank == 3 else filled
            return tf.where(mask, got, tf.cast(fill, values.dtype))

        return {"boxes": pick(boxes, 0.0), "scores": pick(scores, 0.0),
                "classes": pick(labels, -1), "count": tf.cast(count, tf.int32)}  # fmt: skip

    def compute_output_spec(self, inputs):
        n, d = inputs[0].shape[0], self.detections
        return {"boxes": keras.KerasTensor((n, d, 4), "float32"),
                "scores": keras.KerasTensor((n, d), "float32"),
                "classes": keras.KerasTensor((n, d), "int32"),
                "count": keras.KerasTensor((n,), "int32")}  # fmt: skip

    def get_config(self) -> dict:
        return {**super().get_config(), "anchors": self.anchor_config.to_dict(),
                "score_threshold": self.score_threshold, "top_k": self.top_k,
                "nms_iou": self.nms_iou, "detections": self.detections}  # fmt: skip


def _clip(boxes, size):
    import tensorflow as tf

    h, w = tf.cast(size[0], tf.float32), tf.cast(size[1], tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    return tf.stack([tf.clip_by_value(x1, 0.0, w), tf.clip_by_value(y1, 0.0, h),
                     tf.clip_by_value(x2, 0.0, w), tf.clip_by_value(y2, 0.0, h)], -1)  # fmt: skip


def inference_model(detector, **options) -> keras.Model:
    """``detector`` with ``DecodeDetections`` on top: images in, final boxes out.
    ``options``: the layer's (score threshold, top-k, NMS IoU, detections per image)."""
    image = detector.input
    levels = [detector.get_layer(n).output for n in detector.level_names]
    raw = detector.output
    decode = DecodeDetections(detector.anchor_config.to_dict(), name="decode", **options)
    out = decode([image, raw["cls_logits"], raw["bbox_regression"], *levels])
    return keras.Model(image, out, name=f"{detector.name}_inference")
