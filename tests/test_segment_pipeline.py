"""Joint augmentation keeps image and mask aligned; a resumed epoch repeats its crops;
evaluation batches keep full sizes with the padding ignored."""

from __future__ import annotations

import numpy as np
from PIL import Image

from resnetkit.data.masks import IGNORE, MaskSet
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.segment.pipeline import JointAugment, pair_dataset

PREP = Preprocessing(mode="tf")  # x / 127.5 - 1: easy to undo


def _pairs(root, count=4, size=(40, 56)):
    """Images whose grey value is 60 × the mask's class, in 8×8 blocks of one class."""
    root.mkdir(parents=True, exist_ok=True)
    images, masks = [], []
    rng = np.random.default_rng(0)
    for i in range(count):
        blocks = rng.integers(0, 4, (size[0] // 8, size[1] // 8)).astype(np.uint8)
        mask = np.kron(blocks, np.ones((8, 8), np.uint8))
        Image.fromarray(mask * 60).save(root / f"{i}.png")
        Image.fromarray(mask).save(root / f"{i}_mask.png")
        images.append(str(root / f"{i}.png"))
        masks.append(str(root / f"{i}_mask.png"))
    return MaskSet(images, masks)


def _interior(m: np.ndarray, r: int = 2) -> np.ndarray:
    """Pixels whose (2r+1)² neighbourhood holds one class, not the ignore label."""
    h, w = m.shape
    inner = np.zeros_like(m, bool)
    core = m[r : h - r, r : w - r]
    same = core != IGNORE
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            same &= m[r + dy : h - r + dy, r + dx : w - r + dx] == core
    inner[r : h - r, r : w - r] = same
    return inner


def test_augmented_images_and_masks_stay_aligned(tmp_path):
    pairs = _pairs(tmp_path)
    augment = JointAugment(crop=48, min_scale=0.75, max_scale=1.75)
    ds = pair_dataset(pairs, PREP, channels=1, batch_size=2, training=True, augment=augment)
    checked = 0
    for images, masks in ds:
        grey = (images.numpy()[..., 0] + 1) * 127.5
        masks = masks.numpy()
        assert images.shape == (2, 48, 48, 1) and masks.shape == (2, 48, 48)
        # Away from block edges (where bilinear blends classes) grey = 60 × class.
        for g, m in zip(grey, masks, strict=True):
            inner = _interior(m)
            np.testing.assert_allclose(g[inner], 60.0 * m[inner], atol=1.0)
            checked += int(inner.sum())
            assert set(np.unique(m)) <= {0, 1, 2, 3, IGNORE}  # nearest: no blended labels
    assert checked > 1000


def test_small_scales_pad_with_the_ignore_label(tmp_path):
    pairs = _pairs(tmp_path, count=2)
    augment = JointAugment(crop=96, min_scale=0.5, max_scale=0.5, flip=False)
    _, masks = next(iter(pair_dataset(pairs, PREP, channels=1, batch_size=2,
                                           training=True, augment=augment)))  # fmt: skip
    masks = masks.numpy()
    assert (masks[:, 20:, :] == IGNORE).all() and (masks[:, :, 28:] == IGNORE).all()
    assert (masks[:, :20, :28] != IGNORE).all()


def test_an_epoch_is_the_same_every_time_and_differs_from_the_next(tmp_path):
    pairs = _pairs(tmp_path)
    augment = JointAugment(crop=32)

    def epoch(e):
        ds = pair_dataset(pairs, PREP, channels=1, batch_size=4, training=True,
                          augment=augment, seed=5, epoch=e)  # fmt: skip
        return [m.numpy() for _, m in ds]

    np.testing.assert_array_equal(epoch(1), epoch(1))
    assert not np.array_equal(epoch(1), epoch(2))


def test_evaluation_keeps_full_sizes_and_pads_masks_with_ignore(tmp_path):
    small = _pairs(tmp_path / "a", count=1, size=(16, 24))
    large = _pairs(tmp_path / "b", count=1, size=(40, 56))
    pairs = MaskSet(small.images + large.images, small.masks + large.masks)
    images, masks = next(iter(pair_dataset(pairs, PREP, channels=1, batch_size=2)))
    assert images.shape == (2, 40, 56, 1)
    masks = masks.numpy()
    assert (masks[0, 16:] == IGNORE).all() and (masks[0, :, 24:] == IGNORE).all()
    truth = np.asarray(Image.open(large.masks[0]))
    np.testing.assert_array_equal(masks[1], truth)
