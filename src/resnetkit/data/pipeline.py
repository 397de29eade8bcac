"""One tf.data pipeline for training, evaluation and prediction.

    files or arrays → decode (TF for plain JPEG/PNG, Pillow otherwise) → [cache] → resize/crop
                    → [augment] → normalize (from the weights' Preprocessing) → batch
                    → [Keras batch augmentations, MixUp/CutMix, then normalize] → prefetch

Training and evaluation differ only in ``training=True``: the decode, resize and
normalization code is shared, so preprocessing cannot drift between them. Files that fail
to decode (truncated, damaged) are dropped and recorded in a ``BadImageLog``: an epoch never
crashes on them.

Augmentations are Keras' own preprocessing layers (RandomTranslation, RandomErasing,
RandAugment, MixUp, CutMix); the crops use tf.image. Written here: only the decode wrapper and
the ImageNet-style random-resized-crop/resize-center-crop, which Keras lacks as pipeline ops.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data.checks import BadImage, BadImageError, decode_image, native_channels
from resnetkit.data.sources import MAX_PIXELS, ImageSet
from resnetkit.weights.specs import Preprocessing


@dataclass(frozen=True)
class Augment:
    """Training augmentation, chosen by config. Defaults: random-resized-crop and flips."""

    crop: str = "random_resized"  # "random_resized", "pad" (pad-and-crop) or "none"
    min_area: float = 0.08  # random-resized-crop area range [min_area, 1]
    pad: int = 4  # pixels of zero padding for "pad"
    flip: bool = True
    translate: float = 0.0  # RandomTranslation factor (fraction of size)
    erasing: float = 0.0  # RandomErasing probability
    randaugment: int = 0  # RandAugment number of ops (0 = off)
    randaugment_magnitude: float = 0.5
    mixup: float = 0.0  # MixUp alpha (0 = off)
    cutmix: float = 0.0  # CutMix alpha (0 = off)

    @property
    def batch_level(self) -> bool:
        """Whether any augmentation works on whole batches (Keras layers, MixUp, CutMix)."""
        return bool(self.translate or self.erasing or self.randaugment or self.mixup or self.cutmix)

    def __post_init__(self):
        if self.crop not in ("random_resized", "pad", "none"):
            raise ValueError(f"augment.crop must be random_resized, pad or none; got {self.crop!r}")
        if self.mixup and self.cutmix:
            raise ValueError("choose MixUp or CutMix, not both")


class BadImageLog:
    """Files the pipeline could not decode, collected from its worker threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[str, str] = {}

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            self._items.setdefault(path, reason)

    @property
    def items(self) -> list[BadImage]:
        with self._lock:
            return [BadImage(p, r) for p, r in sorted(self._items.items())]


def normalize(images: tf.Tensor, prep: Preprocessing) -> tf.Tensor:
    """Images in 0..255 (any dtype) → the network's input, per the weights' preprocessing.

    Written as one affine map, ``x * scale + offset`` (after RGB→BGR for 'caffe'): on CPU,
    separate divide/subtract/divide passes over a float batch halved the pipeline's speed.
    """
    images = tf.cast(images, tf.float32)
    channels = images.shape[-1]

    def per_channel(values):
        values = np.asarray(values, np.float32)
        return values if channels == len(values) else np.float32(values.mean())

    if prep.mode == "tf":
        return images * np.float32(1 / 127.5) - 1.0
    if prep.mode == "caffe":
        if channels == 3:
            images = images[..., ::-1]  # RGB → BGR
        return images - per_channel(prep.mean)
    std = per_channel(prep.std)
    return images * (1.0 / (255.0 * std)) + (-per_channel(prep.mean) / std)


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


def build_dataset(
    images: ImageSet,
    prep: Preprocessing,
    *,
    channels: int,
    batch_size: int,
    training: bool = False,
    augment: Augment | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    cache: str | None = None,
    bad_log: BadImageLog | None = None,
    max_pixels: int = MAX_PIXELS,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """(images, labels) batches ready for ``model.fit``/``evaluate``/``predict``.

    ``cache``: None, ``"memory"`` or a file path (decoded images are cached before any
    augmentation). Labels are integer class indices, or one-hot (``num_classes``) when MixUp
    or CutMix mixes them.
    """
    augment = augment or Augment()
    bad_log = bad_log if bad_log is not None else BadImageLog()
    autotune = tf.data.AUTOTUNE
    labels = images.labels.astype(np.int32)

    if images.arrays is not None:
        ds = tf.data.Dataset.from_tensor_slices((images.arrays, labels))
        if images.arrays.shape[-1] != channels:

            def matched(image, label):
                return _match_channels(image, channels), label

            ds = ds.map(matched, num_parallel_calls=autotune)
        cropped = False
    else:
        ds, cropped = _decode_files(
            images, labels, prep, channels, training, augment, seed, bad_log, max_pixels
        )

    if cache == "memory":
        ds = ds.cache()
    elif cache:
        ds = ds.cache(str(cache))
    if training and images.arrays is not None:
        ds = ds.shuffle(min(len(labels), 50_000), seed=seed, reshuffle_each_iteration=True)

    def train_geometry(example, pair):
        return _train_geometry(example[0], example[1], pair, prep, augment, cropped)

    def eval_geometry(image, label):
        return resize_center_crop(image, prep), label

    def normalized(images, labels):
        return normalize(images, prep), labels

    # Per image, in parallel, as the last step before batching: normalizing whole float
    # batches on the consumer side was the pipeline's bottleneck. Keras' batch augmentations
    # (and MixUp/CutMix) work in 0..255, so with them normalization waits for the batch.
    batch_level = training and augment.batch_level
    if training:
        # A seed pair per image from one seeded stream that changes every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(train_geometry, num_parallel_calls=autotune)
    elif not cropped:
        ds = ds.map(eval_geometry, num_parallel_calls=autotune)
    if not batch_level:
        ds = ds.map(normalized, num_parallel_calls=autotune)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if batch_level:
        ds = _batch_augment(ds, augment, num_classes, seed)
        ds = ds.map(normalized, num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _decode_files(images, labels, prep, channels, training, augment, seed, bad_log, max_pixels):
    """(uint8 image, label) elements from files; bad files are dropped, never raised.

    Returns the dataset and whether its images are already center-cropped (fixed geometry:
    evaluation, or training without random-resized crops; random-resized crops need the full
    image). Plain JPEG/PNG files (``ImageSet.kinds``, set while indexing) are decoded by
    TensorFlow, in C++ threads; every other file by Pillow (EXIF rotation, palettes, CMYK,
    16-bit, GIF, WebP, BMP), which also resizes while decoding — with JPEG draft scaling for
    large photos. Pillow's failures go to ``bad_log`` with their reasons; a native decode
    that fails despite the index's checks (a file damaged inside) is dropped by
    ``ignore_errors`` and logged by TensorFlow, so an epoch never stops on it.
    """
    paths = [os.fsencode(p) for p in images.paths]  # bytes: non-UTF-8 names survive
    kinds = images.kinds if images.kinds is not None else np.zeros(len(paths), np.int8)
    native = np.array([channels in native_channels(k) for k in kinds], dtype=bool)
    fixed = not (training and augment.crop == "random_resized")
    crop, shorter = prep.crop_size, max(prep.resize_size, prep.crop_size)

    def pil_decode(path: bytes) -> tuple[np.ndarray, bool]:
        name = os.fsdecode(path)
        try:
            image = decode_image(
                name, channels, max_pixels, shorter if fixed else None, prep.interpolation
            )
        except BadImageError as e:
            bad_log.add(name, str(e))
            return np.zeros((crop, crop, channels) if fixed else (1, 1, channels), np.uint8), False
        if fixed:
            top, left = (image.shape[0] - crop) // 2, (image.shape[1] - crop) // 2
            image = image[top : top + crop, left : left + crop]
        return image, True

    def with_pillow(path):
        image, ok = tf.numpy_function(pil_decode, [path], (tf.uint8, tf.bool), stateful=False)
        return tf.ensure_shape(image, [None, None, channels]), ok

    def with_tensorflow(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        image = tf.ensure_shape(image, [None, None, channels])
        if fixed:
            image = resize_center_crop(image, prep)
        return image, tf.constant(True)

    def decode(path, label, use_tf):
        image, ok = tf.cond(use_tf, lambda: with_tensorflow(path), lambda: with_pillow(path))
        if fixed:
            image = tf.ensure_shape(image, [crop, crop, channels])
        return image, label, ok

    def decoded(image, label, ok):
        return ok

    def drop_flag(image, label, ok):
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels, native))
    if training:
        # Shuffle file names (cheap) before decoding; decoded images may be cached after.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)
    return ds.filter(decoded).map(drop_flag), fixed


def _match_channels(x: tf.Tensor, channels: int) -> tf.Tensor:
    have = x.shape[-1]
    if have == 1:
        return tf.repeat(x, channels, axis=-1)
    if channels == 1:
        return tf.cast(
            tf.round(tf.image.rgb_to_grayscale(tf.cast(x[..., :3], tf.float32))), tf.uint8
        )
    return x[..., :channels]


def _train_geometry(image, label, s, prep, augment: Augment, cropped: bool):
    """Per-image random geometry from the seed pair ``s``."""
    if augment.crop == "random_resized":
        image = random_resized_crop(tf.cast(image, tf.float32), prep, augment.min_area, s)
    elif not cropped:
        image = resize_center_crop(tf.cast(image, tf.float32), prep)
        if augment.crop == "pad":
            p = augment.pad
            image = tf.pad(image, [[p, p], [p, p], [0, 0]])
            image = tf.image.stateless_random_crop(
                image, tf.shape(image) - [2 * p, 2 * p, 0], seed=s + 1
            )
    if augment.flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=s + 2)
    return image, label


def _batch_augment(ds: tf.data.Dataset, augment: Augment, num_classes: int | None, seed: int):
    """Keras' own augmentation layers, applied to whole batches in 0..255."""
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
        layers.append(
            keras.layers.RandomErasing(factor=augment.erasing, value_range=(0.0, 255.0), seed=seed)
        )
    mixer = None
    if augment.mixup or augment.cutmix:
        if not num_classes:
            raise ValueError("MixUp/CutMix need num_classes to make one-hot labels")
        mixer = (
            keras.layers.MixUp(alpha=augment.mixup, seed=seed)
            if augment.mixup
            else keras.layers.CutMix(factor=augment.cutmix, seed=seed)
        )

    def apply(x, y):
        x = tf.cast(x, tf.float32)
        for layer in layers:
            x = layer(x, training=True)
        if mixer is not None:
            mixed = mixer({"images": x, "labels": tf.one_hot(y, num_classes)}, training=True)
            return mixed["images"], mixed["labels"]
        return x, y

    return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
