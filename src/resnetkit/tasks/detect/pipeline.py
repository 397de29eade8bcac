"""tf.data streams of images with boxes, augmented together, and RetinaNet's targets.

Every image is resized so that its longer side is the training size (times a random scale
in training), keeping its aspect ratio, and placed top-left on a ``size × size`` canvas
(zeros), so a batch has one shape and one set of anchors, and a prediction maps back to
the original pixels by dividing by the recorded scale. Training adds a random crop where
the scaled image is larger than the canvas and a horizontal flip; boxes move with the
pixels, are clipped to the crop and dropped when less than ``min_visible`` of their area
(or under 2 pixels of width or height) is left. Targets are encoded per image on the
anchors of the canvas (``targets.encode_targets``); crowd boxes match no anchor, and the
background anchors at least half inside one are ignored. Random numbers come from
(seed, epoch, position) by stateless ops, so a resumed epoch repeats its crops exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from resnetkit.data.boxes import BoxSet
from resnetkit.data.checks import decode_image
from resnetkit.data.pipeline import normalize
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.detect.targets import BACKGROUND, IGNORED, encode_targets


@dataclass(frozen=True)
class BoxAugment:
    """Training augmentation of an image and its boxes together."""

    min_scale: float = 0.75
    max_scale: float = 1.25
    flip: bool = True
    min_visible: float = 0.4  # the share of a cropped box's area that must stay

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"scale range must satisfy 0 < min <= max; got {self.min_scale}, {self.max_scale}"
            )


def _padded(arrays: list[np.ndarray], width: int, fill, dtype) -> np.ndarray:
    """``[images, most boxes, width]`` with ``fill`` after each image's own rows."""
    most = max([len(a) for a in arrays] + [1])
    out = np.full((len(arrays), most, width), fill, dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = np.asarray(a, dtype).reshape(len(a), width)
    return out


def resize_onto_canvas(image, boxes, size: int, scale_by=1.0):
    """``image`` resized so its longer side is ``size × scale_by`` and ``boxes`` with it;
    the scale (new pixels per original pixel) too."""
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size * scale_by / tf.reduce_max(hw)
    new = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), 1)
    image = tf.image.resize(tf.cast(image, tf.float32), new, method="bilinear")
    return image, boxes * scale, scale


def augment_boxes(image, boxes, keep, size: int, augment: BoxAugment, seed):
    """Random scale, crop to the canvas and flip; ``keep`` marks the boxes still in use.
    Returns the image (at most ``size`` on each side), boxes, keep and the scale."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    jitter = tf.random.stateless_uniform([], seeds[0], augment.min_scale, augment.max_scale)
    image, boxes, scale = resize_onto_canvas(image, boxes, size, jitter)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    top = tf.random.stateless_uniform([], seeds[1], 0, tf.maximum(h - size, 0) + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, tf.maximum(w - size, 0) + 1, tf.int32)
    image = image[top : top + size, left : left + size]
    shift = tf.cast(tf.stack([left, top, left, top]), tf.float32)
    crop_w = tf.cast(tf.shape(image)[1], tf.float32)
    crop_h = tf.cast(tf.shape(image)[0], tf.float32)
    moved = boxes - shift
    clipped = tf.clip_by_value(moved, 0.0, tf.stack([crop_w, crop_h, crop_w, crop_h]))
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    wh = clipped[:, 2:] - clipped[:, :2]
    left_area = wh[:, 0] * wh[:, 1]
    visible = (left_area >= augment.min_visible * area) & tf.reduce_all(wh >= 2.0, axis=1)
    keep = keep & visible
    if augment.flip:
        flipped = tf.random.stateless_uniform([], seeds[3]) < 0.5
        image = tf.cond(flipped, lambda: image[:, ::-1], lambda: image)
        mirrored = tf.stack([crop_w - clipped[:, 2], clipped[:, 1],
                             crop_w - clipped[:, 0], clipped[:, 3]], axis=1)  # fmt: skip
        clipped = tf.cond(flipped, lambda: mirrored, lambda: clipped)
    return image, clipped, keep, scale


def inside_share(a, b):
    """``[len(a), len(b)]``: the share of each box of ``a`` that lies inside each of ``b``."""
    lt = tf.maximum(a[:, None, :2], b[None, :, :2])
    rb = tf.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = tf.maximum(rb - lt, 0.0)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return wh[..., 0] * wh[..., 1] / tf.maximum(area[:, None], 1e-9)


def training_targets(boxes, classes, crowd, keep, anchors, positive=0.5, negative=0.4):
    """``encode_targets`` of the kept, non-crowd boxes; background anchors at least half
    inside a crowd box are ignored instead."""
    objects = keep & ~crowd
    targets = encode_targets(tf.boolean_mask(boxes, objects), tf.boolean_mask(classes, objects),
                             anchors, positive, negative)  # fmt: skip
    crowd_boxes = tf.boolean_mask(boxes, keep & crowd)
    on_crowd = tf.cond(
        tf.shape(crowd_boxes)[0] > 0,
        lambda: tf.reduce_max(inside_share(anchors, crowd_boxes), axis=1) >= 0.5,
        lambda: tf.zeros([tf.shape(anchors)[0]], tf.bool),
    )
    classes = targets["classes"]
    targets["classes"] = tf.where(on_crowd & (classes == BACKGROUND), IGNORED, classes)
    return targets


def box_dataset(
    images: BoxSet,
    prep: Preprocessing,
    anchors: np.ndarray | None,
    *,
    size: int,
    channels: int,
    batch_size: int,
    training: bool = False,
    targets: bool = False,
    augment: BoxAugment | None = None,
    seed: int = 0,
    epoch: int = 0,
    positive: float = 0.5,
    negative: float = 0.4,
) -> tf.data.Dataset:
    """One epoch of ``images`` on ``size × size`` canvases.

    Training: shuffled, augmented ``(image, {"classes", "boxes"})`` batches (the targets of
    ``anchors``, matched at ``positive``/``negative`` IoU). Otherwise in order, not
    augmented: the same targets with ``targets`` (validation loss and metrics), else
    ``(image, {"index", "scale"})``, the scale mapping canvas pixels back to the image's
    own (divide by it).
    """
    n = len(images)
    index = tf.data.Dataset.range(n)
    if training:
        index = tf.data.Dataset.from_tensor_slices(
            np.random.default_rng([seed, epoch]).permutation(n)
        )
    paths = tf.constant(images.images)
    all_boxes = tf.constant(_padded(images.boxes, 4, 0.0, np.float32))
    all_classes = tf.constant(_padded([c[:, None] for c in images.classes], 1, -1, np.int32))
    all_crowd = tf.constant(_padded([c[:, None] for c in images.crowd], 1, False, bool))
    counts = tf.constant([len(b) for b in images.boxes], tf.int32)
    grid = None if anchors is None else tf.constant(anchors, tf.float32)  # for targets only

    def load(i):
        image = tf.numpy_function(lambda p: decode_image(p.decode(), channels, MAX_PIXELS),
                                  [tf.gather(paths, i)], tf.uint8)  # fmt: skip
        image.set_shape([None, None, channels])
        k = tf.gather(counts, i)
        boxes = tf.gather(all_boxes, i)[:k]
        classes = tf.gather(all_classes, i)[:k, 0]
        crowd = tf.gather(all_crowd, i)[:k, 0]
        keep = tf.ones([k], tf.bool)
        if training:
            key = tf.stack([tf.constant(seed, tf.int64), epoch * n + tf.cast(i, tf.int64)])
            image, boxes, keep, _ = augment_boxes(image, boxes, keep, size,
                                                  augment or BoxAugment(), key)  # fmt: skip
        else:
            image, boxes, scale = resize_onto_canvas(image, boxes, size)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        canvas = tf.pad(normalize(image, prep), [[0, size - h], [0, size - w], [0, 0]])
        canvas.set_shape([size, size, channels])
        if training or targets:
            return canvas, training_targets(boxes, classes, crowd, keep, grid, positive,
                                            negative)  # fmt: skip
        return canvas, {"index": tf.cast(i, tf.int32), "scale": scale}

    ds = index.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
