"""What the data and the weights decide about a classifier's input: size, channels and
normalization, printed at the start of a run and recorded in its summary.

- Pretrained weights keep the preprocessing they were trained with (size, mean/std).
- Otherwise the size is the model's own default input size (resnet20: 32, resnet8_fast: 28,
  resnet50: 224) when the images are at least half that size; smaller images keep their own
  size (a 28-px image at 224 costs 64× the compute and adds no detail). The channels are the
  data's (grey images stay one channel), and mean/std are measured on a sample of the
  training images.
- ``model.input_size`` overrides the size and channels in every case.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from PIL import Image

from resnetkit.data import DataSource, ImageSet, load_data
from resnetkit.data.checks import decode_image
from resnetkit.models.variants import get_variant
from resnetkit.preprocessing import Preprocessing

GREY_MODES = ("L", "LA", "I", "I;16", "1")  # Pillow modes of one-channel images
STAT_SAMPLE_FILES = 256  # files decoded to measure mean/std (arrays: every 10,000th image)


class Start(Protocol):
    """Weights a run starts from (``resnetkit.transfer.finetune``'s ``Source``)."""

    arch: str
    prep: Preprocessing
    channels: int
    description: str


@dataclass
class Inputs:
    """The data, and what it decides about the model: geometry and preprocessing."""

    source: DataSource
    prep: Preprocessing
    input_shape: tuple[int, int, int]
    decision: str  # one line: what was chosen and why
    image_side: int | None = None  # the images' most common shorter side (None: unknown)

    @property
    def channels(self) -> int:
        return self.input_shape[-1]

    def record(self) -> dict:
        """What the run's summary keeps of the decision."""
        return {
            "input_shape": list(self.input_shape),
            "preprocessing": self.prep.to_dict(),
            "decision": self.decision,
        }


def resolve_inputs(config, start: Start | None = None, registry: dict | None = None) -> Inputs:
    """Load ``config``'s data and decide input size, channels and preprocessing.

    ``start``: weights being fine-tuned; ``registry``: the weights registry, for
    ``model.weights`` naming one of its entries.
    """
    c = config
    source = load_data(
        c.data.source,
        val_fraction=c.data.val_fraction,
        seed=c.run.seed,
        max_pixels=c.data.max_pixels,
    )
    if c.data.train_subset is not None:
        source = train_subset(source, c.data.train_subset, c.run.seed)
    source.validate()
    train = source.splits["train"]
    channels, side, seen = data_geometry(train)
    weights = c.model.weights
    if start is not None:
        if weights is not None:
            raise ValueError("set finetune.source or model.weights, not both")
        base, size = start.prep, start.prep.crop_size
        # Grey arrays stay grey: the first convolution is adapted to the data's channels.
        channels = channels if train.arrays is not None else start.channels
        why = f"{start.description}'s preprocessing"
    elif registry is not None and weights is not None and weights in registry:
        base = registry[weights].preprocessing
        size, channels, why = base.crop_size, 3, f"weights {weights!r}'s preprocessing"
    else:
        size, why = model_size(c.model.name, side)
        mean, std = measured_stats(train, channels, c.data.max_pixels)
        base = Preprocessing(mean=mean, std=std, crop_size=size, resize_size=size)
        why += f"; data: {seen}; mean/std measured on the data"
    if c.model.input_size is not None:
        if len(c.model.input_size) != 3 or c.model.input_size[0] != c.model.input_size[1]:
            raise ValueError(
                f"model.input_size must be [size, size, channels]; got {c.model.input_size}"
            )
        size, _, channels = c.model.input_size
        why = f"model.input_size; normalization from {why}"
    resize = max(size, round(size * base.resize_size / base.crop_size))
    prep = replace(base, crop_size=size, resize_size=resize)
    shape = (size, size, channels)
    return Inputs(source, prep, shape, f"input {size}×{size}×{channels} ({why})", side)


def model_size(arch: str, data_side: int | None) -> tuple[int, str]:
    """(size, why): the model's default input size when the images' shorter side is at
    least half of it (a mild resize to the size the network was designed for); smaller
    images keep their own size (blowing them up adds compute, not detail), never below the
    model's minimum input size."""
    variant = get_variant(arch)
    size = variant.input_size
    why = f"{arch}'s default input size {size}"
    if data_side is not None and 2 * data_side < size:
        size = max(variant.min_input_size, data_side)
        why = f"the images' own {data_side} px ({arch}'s default {variant.input_size} is over "
        why += f"twice that; its minimum is {size})" if size != data_side else "twice that)"
    return size, why


def data_geometry(images: ImageSet) -> tuple[int, int | None, str]:
    """(channels, shorter side, description) of the images, read from a sample of file
    headers: 1 channel when every sampled image is grey, else 3; the side of the most
    common size."""
    if images.arrays is not None:
        n, h, w, ch = images.arrays.shape
        return ch, min(h, w), f"{n:,} arrays of {h}×{w}×{ch}"
    seen = Counter()
    for path in _sample(images.paths, STAT_SAMPLE_FILES):
        try:
            with Image.open(path) as im:
                seen[(im.size, "grey" if im.mode in GREY_MODES else "colour")] += 1
        except OSError:
            continue  # unreadable files are reported by the bad-image policy
    if not seen:
        return 3, None, "no readable image in the sample"
    total = sum(seen.values())
    ((w, h), mode), count = seen.most_common(1)[0]
    grey = all(m == "grey" for _, m in seen)
    text = f"mostly {w}×{h} {mode} ({count / total:.0%} of {total} sampled files)"
    return (1 if grey else 3), min(w, h), text


def measured_stats(
    images: ImageSet, channels: int, max_pixels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the images in 0..1, measured on a sample."""
    if images.arrays is not None:
        sample = images.arrays[:: max(1, len(images) // 10_000)].astype(np.float32) / 255.0
        pixels = sample.reshape(-1, sample.shape[-1])
    else:
        decoded = []
        for path in _sample(images.paths, STAT_SAMPLE_FILES):
            try:
                decoded.append(decode_image(path, channels, max_pixels).reshape(-1, channels))
            except Exception:  # a damaged file: the bad-image policy reports it
                continue
        if not decoded:
            return Preprocessing().mean[:channels], Preprocessing().std[:channels]
        pixels = np.concatenate(decoded).astype(np.float32) / 255.0
    mean, std = pixels.mean(axis=0), np.maximum(pixels.std(axis=0), 1e-3)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _sample(paths: list[str], n: int) -> list[str]:
    """Up to ``n`` paths spread evenly over the list (deterministic)."""
    if len(paths) <= n:
        return list(paths)
    return [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]


def train_subset(source: DataSource, n: int, seed: int) -> DataSource:
    """``data.train_subset``: ``n`` training images, per class in proportion (seeded)."""
    if n < 1:
        raise ValueError(f"data.train_subset must be positive; got {n}")
    subset = stratified_subset(source.splits["train"], n, seed)
    return replace(source, splits={**source.splits, "train": subset})


def stratified_subset(images: ImageSet, n: int, seed: int) -> ImageSet:
    """Exactly ``min(n, len(images))`` images, each class in proportion (largest
    remainders round), drawn with a seeded shuffle; in the original order."""
    if n >= len(images):
        return images
    classes, counts = np.unique(images.labels, return_counts=True)
    quota = counts * n / len(images)
    take = np.floor(quota).astype(np.int64)
    take[np.argsort(take - quota, kind="stable")[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.permutation(np.flatnonzero(images.labels == c))[:k]
        for c, k in zip(classes, take, strict=True)
    ]
    return images.subset(np.sort(np.concatenate(picked)))
