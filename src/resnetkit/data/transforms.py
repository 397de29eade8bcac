"""Training-time image transforms, each a function of an explicit seed (never of global
random state), so that a training stream is a function of (seed, epoch) alone."""

from __future__ import annotations

import keras
import tensorflow as tf

from resnetkit.data.augment import Augment
from resnetkit.preprocessing import Preprocessing


def resize_center_crop(image: tf.Tensor, prep: Preprocessing) -> tf.Tensor:
    """Evaluation geometry: shorter side to ``resize_size``, then a centered square crop.

    A uint8 image stays uint8 (rounded), so that decoded files are small until batching;
    the resize is skipped when the image already has the size.
    """
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = prep.resize_size / tf.minimum(h, w)
    size = tf.cast(tf.round(tf.stack([h * scale, w * scale])), tf.int32)
    size = tf.maximum(size, prep.crop_size)
    dtype = image.dtype

    def resized():
        out = tf.image.resize(image, size, method=prep.interpolation, antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(out, 0, 255)), dtype) if dtype == tf.uint8 else out

    image = tf.cond(tf.reduce_all(tf.equal(size, shape[:2])), lambda: image, resized)
    top = (size[0] - prep.crop_size) // 2
    left = (size[1] - prep.crop_size) // 2
    image = image[top : top + prep.crop_size, left : left + prep.crop_size]
    return tf.ensure_shape(image, [prep.crop_size, prep.crop_size, image.shape[-1]])


def random_resized_crop(image: tf.Tensor, prep: Preprocessing, min_area: float, seed) -> tf.Tensor:
    """A random region (area min_area..1 of the image, aspect 3/4..4/3) resized to the crop."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        area_range=(min_area, 1.0),
        aspect_ratio_range=(3 / 4, 4 / 3),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    channels = image.shape[-1]
    image = tf.slice(image, begin, size)
    image = tf.image.resize(
        image, (prep.crop_size, prep.crop_size), method=prep.interpolation, antialias=True
    )
    return tf.ensure_shape(image, [prep.crop_size, prep.crop_size, channels])


def train_geometry(image, label, s, prep, augment: Augment, cropped: bool):
    """Per-image random geometry from the seed pair ``s``."""
    s = tf.random.experimental.stateless_split(s, 3)
    if augment.crop == "random_resized":
        image = random_resized_crop(tf.cast(image, tf.float32), prep, augment.min_area, s[0])
    elif not cropped:
        image = resize_center_crop(tf.cast(image, tf.float32), prep)
        if augment.crop == "pad":
            p = augment.pad
            image = tf.pad(image, [[p, p], [p, p], [0, 0]])
            image = tf.image.stateless_random_crop(
                image, tf.shape(image) - [2 * p, 2 * p, 0], seed=s[1]
            )
    if augment.flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=s[2])
    return image, label


def batch_pad_crop_flip(x: tf.Tensor, s, augment: Augment) -> tf.Tensor:
    """Per-image pad-and-crop offsets and flips for a whole batch, from one seed pair."""
    s = tf.random.experimental.stateless_split(s, 2)
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    if augment.crop == "pad" and augment.pad:
        p = augment.pad
        x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        offsets = tf.random.stateless_uniform([n, 2], seed=s[0], maxval=2 * p + 1, dtype=tf.int32)
        rows = offsets[:, :1] + tf.range(h)[None]
        cols = offsets[:, 1:] + tf.range(w)[None]
        x = tf.gather(x, rows, axis=1, batch_dims=1)
        x = tf.gather(x, cols, axis=2, batch_dims=1)
    if augment.flip:
        flip = tf.random.stateless_uniform([n], seed=s[1]) < 0.5
        x = tf.where(flip[:, None, None, None], tf.reverse(x, [2]), x)
    return x


def batch_layers(augment: Augment, seed: int):
    """Keras' own augmentation layers for whole batches in 0..255, and the label mixer."""
    layers = []
    if augment.translate:
        layers.append(
            keras.layers.RandomTranslation(augment.translate, augment.translate, seed=seed)
        )
    if augment.randaugment:
        layers.append(
            keras.layers.RandAugment(
                value_range=(0.0, 255.0),
                num_ops=augment.randaugment,
                factor=augment.randaugment_magnitude,
                seed=seed,
            )
        )
    if augment.erasing:
        # factor=(p, p): each image is erased with probability p. A single number would make
        # Keras draw each image's probability from [0, p], erasing p/2 of them on average.
        p = augment.erasing
        layers.append(
            keras.layers.RandomErasing(factor=(p, p), value_range=(0.0, 255.0), seed=seed)
        )
    mixer = None
    if augment.mixup:
        mixer = keras.layers.MixUp(alpha=augment.mixup, seed=seed)
    elif augment.cutmix:
        mixer = keras.layers.CutMix(factor=augment.cutmix, seed=seed)
    return layers, mixer


def apply_batch_layers(x, y, s, layers, mixer, num_classes):
    """Run the batch layers with their seed state set from ``s`` (a stateless seed pair)."""
    x = tf.cast(x, tf.float32)
    for j, layer in enumerate([*layers, mixer]):
        if layer is None:
            continue
        state = layer.generator.state
        state.assign(tf.cast(tf.random.experimental.stateless_fold_in(s, j), state.dtype))
        if layer is mixer:
            mixed = mixer({"images": x, "labels": tf.one_hot(y, num_classes)}, training=True)
            return mixed["images"], mixed["labels"]
        x = layer(x, training=True)
    return x, y
