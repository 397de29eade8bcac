"""tf.data streams of (image, mask) pairs with joint augmentation.

Training: a random scale (DeepLab's 0.5–2.0), padded where smaller than the crop (images
with 0, masks with 255, so padding is never scored), a random crop and a horizontal flip,
each applied identically to the image (bilinear) and its mask (nearest-neighbour), then the
backbone's normalization. Every random number is drawn from (seed, epoch, position in the
epoch) by stateless ops, so a resumed epoch repeats the same crops exactly. Evaluation is at
full size: a batch is padded to its largest image (masks with 255).

Masks are decoded with Pillow, because TensorFlow's PNG decoder expands palette PNGs (VOC's)
to their colours instead of returning the class indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from PIL import Image

from resnetkit.data.checks import decode_image
from resnetkit.data.masks import IGNORE, MaskSet
from resnetkit.data.pipeline import normalize
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.preprocessing import Preprocessing


@dataclass(frozen=True)
class JointAugment:
    """Training augmentation of image and mask together."""

    crop: int = 256  # side of the square training crop
    min_scale: float = 0.5
    max_scale: float = 2.0
    flip: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"scale range must satisfy 0 < min <= max; got {self.min_scale}, {self.max_scale}"
            )
        if self.crop < 1:
            raise ValueError(f"crop must be positive; got {self.crop}")


def _load_pair(image_path: bytes, mask_path: bytes, channels: int):
    image = decode_image(image_path.decode(), channels, MAX_PIXELS)
    with Image.open(mask_path.decode()) as m:
        mask = np.asarray(m, dtype=np.uint8)
    return image, mask[..., None]


def load_pair(image_path, mask_path, channels: int):
    """Decode one pair: uint8 image [H, W, channels], uint8 mask [H, W, 1]."""
    image, mask = tf.numpy_function(
        lambda i, m: _load_pair(i, m, channels), [image_path, mask_path], [tf.uint8, tf.uint8]
    )
    image.set_shape([None, None, channels])
    mask.set_shape([None, None, 1])
    return image, mask


def augment_pair(image, mask, augment: JointAugment, seed):
    """Scale, pad, crop and flip ``image`` and ``mask`` identically; ``seed``: a [2] int
    tensor for the stateless random ops."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.random.stateless_uniform([], seeds[0], augment.min_scale, augment.max_scale)
    new = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    image = tf.image.resize(tf.cast(image, tf.float32), new, method="bilinear")
    mask = tf.image.resize(mask, new, method="nearest")
    c = augment.crop
    pad_h, pad_w = tf.maximum(c - new[0], 0), tf.maximum(c - new[1], 0)
    paddings = [[0, pad_h], [0, pad_w], [0, 0]]
    image = tf.pad(image, paddings)  # zeros: black, the usual fill before normalization
    mask = tf.pad(mask, paddings, constant_values=IGNORE)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    top = tf.random.stateless_uniform([], seeds[1], 0, h - c + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, w - c + 1, dtype=tf.int32)
    image = image[top : top + c, left : left + c]
    mask = mask[top : top + c, left : left + c]
    if augment.flip:
        flipped = tf.random.stateless_uniform([], seeds[3]) < 0.5
        image = tf.cond(flipped, lambda: image[:, ::-1], lambda: image)
        mask = tf.cond(flipped, lambda: mask[:, ::-1], lambda: mask)
    return image, mask


def pair_dataset(
    pairs: MaskSet,
    prep: Preprocessing,
    *,
    channels: int,
    batch_size: int,
    training: bool = False,
    augment: JointAugment | None = None,
    seed: int = 0,
    epoch: int = 0,
) -> tf.data.Dataset:
    """One epoch of ``pairs`` as (normalized image, int32 mask [N, H, W]) batches:
    shuffled and augmented when ``training``, in order at full size otherwise."""
    n = len(pairs)
    index = tf.data.Dataset.range(n)
    if training:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        index = tf.data.Dataset.from_tensor_slices(order)
    paths = tf.constant(pairs.images), tf.constant(pairs.masks)

    def load(i):
        image, mask = load_pair(tf.gather(paths[0], i), tf.gather(paths[1], i), channels)
        if training:
            key = tf.stack([tf.constant(seed, tf.int64), epoch * n + tf.cast(i, tf.int64)])
            image, mask = augment_pair(image, mask, augment or JointAugment(), key)
        return normalize(image, prep), tf.cast(mask[..., 0], tf.int32)

    ds = index.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if training:
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = ds.padded_batch(batch_size, padding_values=(0.0, IGNORE))
    return ds.prefetch(tf.data.AUTOTUNE)
