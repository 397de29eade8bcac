"""Box-aware augmentation keeps every box on its object; the training stream's targets."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from PIL import Image

from resnetkit.data.boxes import BoxSet
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.detect.anchors import AnchorConfig, anchors
from resnetkit.tasks.detect.pipeline import BoxAugment, augment_boxes, box_dataset
from resnetkit.tasks.detect.targets import BACKGROUND

PLAIN = Preprocessing("torch", (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))  # x → x


def _image_with_rectangles(rng, h=90, w=140):
    """Grey noise with three pure-red rectangles; their boxes."""
    image = rng.integers(60, 120, (h, w, 3)).astype(np.uint8)
    image[..., 0] = np.minimum(image[..., 0], 120)
    boxes = np.array([[10, 10, 40, 30], [60, 20, 130, 80], [100, 5, 120, 15]], np.float32)
    for x1, y1, x2, y2 in boxes.astype(int):
        image[y1:y2, x1:x2] = (255, 0, 0)
    return image, boxes


def test_augmented_boxes_stay_on_their_objects():
    rng = np.random.default_rng(0)
    image, boxes = _image_with_rectangles(rng)
    seen_flip = seen_drop = False
    for k in range(40):
        out, moved, keep, _ = augment_boxes(
            tf.constant(image), tf.constant(boxes), tf.ones(3, tf.bool), 96,
            BoxAugment(min_scale=0.6, max_scale=1.6), tf.constant([7, k], tf.int64),
        )  # fmt: skip
        out, moved, keep = out.numpy(), moved.numpy(), keep.numpy()
        assert out.shape[0] <= 96 and out.shape[1] <= 96
        seen_drop |= not keep.all()
        for (x1, y1, x2, y2), kept in zip(moved, keep, strict=True):
            if not kept:
                continue
            inner = out[int(np.ceil(y1)) + 1 : int(y2) - 1, int(np.ceil(x1)) + 1 : int(x2) - 1]
            assert inner.size and (inner[..., 0] > 200).mean() > 0.95, (k, x1, y1, x2, y2)
            assert (inner[..., 1] < 50).mean() > 0.95
        seen_flip |= bool(moved[0, 0] > out.shape[1] / 2)
    assert seen_flip and seen_drop  # both branches ran


def test_the_training_stream_gives_targets_on_the_canvas_anchors(tmp_path):
    rng = np.random.default_rng(1)
    image, boxes = _image_with_rectangles(rng)
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    images = BoxSet(paths, [boxes, boxes[:1], np.zeros((0, 4), np.float32)],
                    [np.array([0, 1, 1]), np.array([1]), np.zeros(0, np.int32)],
                    [np.array([False, True, False]), np.array([False]), np.zeros(0, bool)],
                    [(90, 140)] * 3)  # fmt: skip
    config = AnchorConfig(sizes=((16,), (32,), (64,)), ratios=(0.5, 1.0, 2.0))
    grid = anchors(config, (64, 64), [(8, 8), (4, 4), (2, 2)])
    fixed = BoxAugment(1.0, 1.0, flip=False)  # the whole image fits: nothing moves
    ds = box_dataset(images, PLAIN, grid, size=64, channels=3, batch_size=3, training=True,
                     augment=fixed)  # fmt: skip
    canvas, targets = next(iter(ds))
    assert canvas.shape == (3, 64, 64, 3) and targets["classes"].shape == (3, len(grid))
    order = np.random.default_rng([0, 0]).permutation(3)  # the epoch's shuffle
    classes = targets["classes"].numpy()[np.argsort(order)]
    assert (classes[0] >= 0).any() and (classes[1] >= 0).any()
    assert set(np.unique(classes[2])) == {BACKGROUND}  # no box: background everywhere
    crowd = boxes[1] * 64 / 140
    inside = (np.minimum(grid[:, 2:], crowd[2:]) - np.maximum(grid[:, :2], crowd[:2])).clip(0)
    area = (grid[:, 2] - grid[:, 0]) * (grid[:, 3] - grid[:, 1])
    on_crowd = inside.prod(1) / area >= 0.5
    assert on_crowd.any() and (classes[0][on_crowd] != BACKGROUND).all()
    evaluation = box_dataset(images, PLAIN, grid, size=64, channels=3, batch_size=2)
    canvas, info = next(iter(evaluation))
    assert info["index"].numpy().tolist() == [0, 1]
    np.testing.assert_allclose(info["scale"].numpy(), 64 / 140)
    assert canvas.shape == (2, 64, 64, 3) and not canvas.numpy()[:, 42:].any()  # padding
