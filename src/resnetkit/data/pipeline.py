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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from resnetkit.data.augment import Augment
from resnetkit.data.checks import BadImage, BadImageError, decode_image, native_channels
from resnetkit.data.sources import MAX_PIXELS, ImageSet
from resnetkit.data.transforms import (
    apply_batch_layers,
    batch_layers,
    batch_pad_crop_flip,
    resize_center_crop,
    train_geometry,
)
from resnetkit.preprocessing import Preprocessing

# Parallel calls for the per-image decode and crop maps. A fixed number rather than
# AUTOTUNE: on a small machine AUTOTUNE sometimes settled on one call in a fresh process,
# which made decoding much slower; two calls per core kept every run fast.
DECODE_CALLS = 2 * len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 4


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
    separate divide/subtract/divide passes over a float batch are each a full pass over it.
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
    epochs: int = 1,
    first_epoch: int = 0,
    skip_batches: int = 0,
    passes_per_epoch: int = 1,
) -> tf.data.Dataset:
    """(images, labels) batches ready for ``model.fit``/``evaluate``/``predict``.

    ``cache``: None, ``"memory"`` or a file path (decoded images are cached before any
    augmentation). Labels are integer class indices, or one-hot (``num_classes``) when MixUp
    or CutMix mixes them.

    Training data is a stream of ``epochs`` epochs starting at ``first_epoch``, for
    ``model.fit(ds, epochs=..., steps_per_epoch=...)``. Each epoch's order and augmentation
    are a function of ``(seed, epoch)`` alone, never of how often the data was iterated:
    a run resumed at epoch ``e`` after ``skip_batches`` batches sees exactly the batches an
    uninterrupted run saw. An epoch of ``passes_per_epoch`` passes (a small split, see
    training/rules.py) is that many passes in a row, each shuffled as an epoch of its own.
    """
    augment = augment or Augment()
    if training and not augment.is_resolved:  # a library caller: decided by the input size
        augment = augment.resolved(prep.crop_size)[0]
    bad_log = bad_log if bad_log is not None else BadImageLog()
    batch_level = training and augment.batch_level
    if batch_level and (augment.mixup or augment.cutmix) and not num_classes:
        raise ValueError("MixUp/CutMix need num_classes to make one-hot labels")
    src = _decoded_source(images, prep, channels, training, augment, bad_log, max_pixels, cache)
    if not training:
        return _eval_batches(src, prep, batch_size)
    # In-memory images already at the crop size need only pad-crop and flips, which are
    # applied to whole batches (vectorized): per-image maps cost a noticeable share of a
    # small network's step.
    whole_batches = (
        images.arrays is not None
        and augment.crop in ("pad", "none")
        and tuple(images.arrays.shape[1:3]) == (prep.crop_size, prep.crop_size)
    )
    layers, mixer = batch_layers(augment, seed) if batch_level else ([], None)
    epoch = _EpochMaker(
        src, prep, augment, seed, batch_size, drop_remainder, whole_batches, num_classes
    )
    epoch.layers, epoch.mixer = layers, mixer
    # Passes are concatenated in Python (a shuffle seed must be a Python int); they share
    # the cache of the source.
    r = passes_per_epoch
    passes = range(first_epoch * r, (first_epoch + epochs) * r)
    stream = epoch(passes[0])
    for p in passes[1:]:
        stream = stream.concatenate(epoch(p))
    if skip_batches:
        stream = stream.skip(skip_batches)
    # tf.data's default static rewrites serialize the graph when the iterator is made, and
    # the serialization copies the shared source once per concatenated epoch: in-memory
    # images were held `epochs` times (a regression test holds it). The pipeline already
    # sets its parallelism and prefetching by hand, so the rewrites are off; autotuning
    # stays on.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return stream.prefetch(tf.data.AUTOTUNE).with_options(options)


@dataclass
class _Source:
    """(image, label) examples before any augmentation, and how far they are decoded."""

    ds: tf.data.Dataset
    decode: Callable | None  # still to apply (per file) when nothing was cached
    cropped: bool  # the decoder already produced the crop
    cached: bool  # decoded before the cache: ``decode`` needs no second application
    size: int


def _decoded_source(
    images: ImageSet, prep, channels, training, augment, bad_log, max_pixels, cache
) -> _Source:
    """Arrays or files as (image, label) examples; decoded images are cached (in a fixed
    order). File names are shuffled before decoding when nothing is cached, so that no
    buffer of decoded images is needed."""
    labels = images.labels.astype(np.int32)
    if images.arrays is not None:
        ds = tf.data.Dataset.from_tensor_slices((images.arrays, labels))
        if images.arrays.shape[-1] != channels:

            def matched(image, label):
                return _match_channels(image, channels), label

            ds = ds.map(matched, num_parallel_calls=DECODE_CALLS)
        decode, cropped = None, False
    else:
        native = _native(images, channels)
        ds = tf.data.Dataset.from_tensor_slices(
            ([os.fsencode(p) for p in images.paths], labels, native)
        )
        decode, cropped = _file_decoder(
            bool(native.all()), prep, channels, training, augment, bad_log, max_pixels
        )
    cached = decode is None or cache is not None
    if decode is not None and cached:
        ds = decode(ds)
    if cache == "memory":
        ds = ds.cache()
    elif cache:
        ds = ds.cache(str(cache))
    return _Source(ds, decode, cropped, cached, len(labels))


def _normalizer(prep: Preprocessing) -> Callable:
    def normalized(images, labels):
        return normalize(images, prep), labels

    return normalized


def _eval_batches(src: _Source, prep: Preprocessing, batch_size: int) -> tf.data.Dataset:
    """Evaluation: in order, center-cropped, batched."""
    ds = src.ds
    if src.decode is not None and not src.cached:
        ds = src.decode(ds)
    if not src.cropped:
        ds = ds.map(lambda x, y: (resize_center_crop(x, prep), y), num_parallel_calls=DECODE_CALLS)
    # Normalized per batch: one vectorized op instead of one per image, and the images
    # travel as uint8 until then.
    ds = ds.batch(batch_size).map(_normalizer(prep), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass
class _EpochMaker:
    """One pass's batches as a function of (seed, pass) alone (a pass is an epoch unless
    epochs are several passes)."""

    src: _Source
    prep: Preprocessing
    augment: Augment
    seed: int
    batch_size: int
    drop_remainder: bool
    whole_batches: bool
    num_classes: int | None
    layers: list = field(default_factory=list)  # batch-level Keras augmentation layers
    mixer: Any = None  # MixUp/CutMix

    def __call__(self, epoch: int) -> tf.data.Dataset:
        src, augment, prep, autotune = self.src, self.augment, self.prep, tf.data.AUTOTUNE
        batch_level = augment.batch_level
        normalized = _normalizer(prep)
        epoch_seed = tf.constant([self.seed, epoch], tf.int64)
        data = src.ds.shuffle(
            src.size, seed=self.seed * 1_000_003 + epoch, reshuffle_each_iteration=False
        )
        if not src.cached:
            data = src.decode(data)
        image_seeds = tf.random.experimental.stateless_fold_in(epoch_seed, 0)
        if self.whole_batches:  # same crops and flips, drawn and applied per batch: cheaper

            def geometry(b, batch):
                s = tf.random.experimental.stateless_fold_in(image_seeds, b)
                return batch_pad_crop_flip(batch[0], s, augment), batch[1]

            data = data.batch(self.batch_size, drop_remainder=self.drop_remainder)
            data = data.enumerate().map(geometry, num_parallel_calls=autotune)
        else:

            def geometry(i, example):
                s = tf.random.experimental.stateless_fold_in(image_seeds, i)
                return train_geometry(*example, s, prep, augment, src.cropped)

            data = data.enumerate().map(geometry, num_parallel_calls=DECODE_CALLS)
            data = data.batch(self.batch_size, drop_remainder=self.drop_remainder)
        if not batch_level:
            return data.map(normalized, num_parallel_calls=autotune)
        layers, mixer = self.layers, self.mixer
        batch_seeds = tf.random.experimental.stateless_fold_in(epoch_seed, 1)
        num_classes = self.num_classes

        def augmented(b, batch):
            s = tf.random.experimental.stateless_fold_in(batch_seeds, b)
            return normalized(*apply_batch_layers(*batch, s, layers, mixer, num_classes))

        # In order, one batch at a time: the Keras layers draw from seed state that is set
        # per batch, which keeps their randomness a function of (seed, epoch, batch).
        return data.enumerate().map(augmented)


def _native(images: ImageSet, channels: int) -> np.ndarray:
    """Which files TensorFlow decodes itself (plain JPEG/PNG, per the index's header check)."""
    kinds = images.kinds if images.kinds is not None else np.zeros(len(images.paths), np.int8)
    return np.array([channels in native_channels(k) for k in kinds], dtype=bool)


def _file_decoder(all_native, prep, channels, training, augment, bad_log, max_pixels):
    """A function mapping a dataset of (path, label, native) to (uint8 image, label).

    Bad files are dropped, never raised. Also returns whether its images are already
    center-cropped (fixed geometry: evaluation, or training without random-resized crops;
    random-resized crops need the full image). Plain JPEG/PNG files (``ImageSet.kinds``, set
    while indexing; ``all_native`` when every file is one) are decoded by TensorFlow, in C++
    threads; every other file by Pillow (EXIF rotation, palettes, CMYK, 16-bit, GIF, WebP,
    BMP), which also resizes while decoding — with JPEG draft scaling for large photos.
    Pillow's failures go to ``bad_log`` with their reasons; a native decode that fails
    despite the index's checks (a file damaged inside) is dropped by ``ignore_errors`` and
    logged by TensorFlow, so an epoch never stops on it.
    """
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

    def decode_one(path, label, use_tf):
        image, ok = tf.cond(use_tf, lambda: with_tensorflow(path), lambda: with_pillow(path))
        if fixed:
            image = tf.ensure_shape(image, [crop, crop, channels])
        return image, label, ok

    def decode_native(path, label, use_tf):
        return with_tensorflow(path)[0], label

    def decode(ds: tf.data.Dataset) -> tf.data.Dataset:
        if all_native:  # the common case: no Python decoder, no flag to filter on
            ds = ds.map(decode_native, num_parallel_calls=DECODE_CALLS)
            return ds.ignore_errors(log_warning=True)
        ds = ds.map(decode_one, num_parallel_calls=DECODE_CALLS).ignore_errors(log_warning=True)
        return ds.filter(_decoded_ok).map(_without_flag)

    return decode, fixed


def _decoded_ok(image, label, ok):
    return ok


def _without_flag(image, label, ok):
    return image, label


def _match_channels(x: tf.Tensor, channels: int) -> tf.Tensor:
    have = x.shape[-1]
    if have == 1:
        return tf.repeat(x, channels, axis=-1)
    if channels == 1:
        return tf.cast(
            tf.round(tf.image.rgb_to_grayscale(tf.cast(x[..., :3], tf.float32))), tf.uint8
        )
    return x[..., :channels]
