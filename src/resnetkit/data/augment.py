"""Training augmentation as a config: the ``augment`` section, without TensorFlow.

The pipeline (pipeline.py) applies it; the typed config and the CLI only describe it, so
this module imports nothing heavier than the standard library.

``crop="auto"`` (the default) is decided by the images' size (``Augment.resolved``):

- images of at most ``SMALL_IMAGE`` (64) pixels get pad-and-crop and flips, as CIFAR recipes
  do (He et al. 2016: 4 pixels of padding at 32, i.e. an eighth of the side): a
  random-resized crop of 8% of a 28-pixel image is a 8×8 patch that rarely shows the object;
- larger images get random-resized crops whose smallest crop keeps as many pixels as
  ImageNet's 8% of 224×224 (about 64×64, Szegedy et al. 2015): ``min_area`` is
  ``(64 / side)²``, 0.08 at 224 px and more, 0.25 at 128, at most 0.5.

The side is the images' own (shorter) side when smaller than the network's input, so that
small images resized up for pretrained weights are shifted, not zoomed into.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace
from typing import Literal

Crop = Literal["auto", "random_resized", "pad", "none"]

SMALL_IMAGE = 64  # pixels: at most this, pad-and-crop; above it, random-resized crops
MIN_CROP_PIXELS = 64  # side of the smallest random-resized crop, in the images' own pixels
MIN_AREA_RANGE = (0.08, 0.5)  # random-resized crop's min_area, clipped to this


@dataclass(frozen=True)
class Augment:
    """Training augmentation, chosen by config. Defaults: the crop by image size, and flips."""

    crop: Crop = "auto"  # auto (by image size), random-resized-crop, pad-and-crop, or none
    min_area: float | None = None  # random-resized-crop area range [min_area, 1]; None: rule
    pad: int | None = None  # pixels of zero padding for "pad"; None: an eighth of the side
    flip: bool = True
    translate: float = 0.0  # RandomTranslation factor (fraction of size)
    erasing: float = 0.0  # probability that an image gets a random-erasing patch
    randaugment: int = 0  # RandAugment number of ops (0 = off)
    randaugment_magnitude: float = 0.5
    mixup: float = 0.0  # MixUp alpha (0 = off)
    cutmix: float = 0.0  # CutMix alpha (0 = off)

    @property
    def batch_level(self) -> bool:
        """Whether any augmentation works on whole batches (Keras layers, MixUp, CutMix)."""
        return bool(self.translate or self.erasing or self.randaugment or self.mixup or self.cutmix)

    @property
    def is_resolved(self) -> bool:
        return self.crop != "auto" and self.min_area is not None and self.pad is not None

    def __post_init__(self) -> None:
        crops = typing.get_args(Crop)
        if self.crop not in crops:
            raise ValueError(f"augment.crop must be one of {', '.join(crops)}; got {self.crop!r}")
        if self.mixup and self.cutmix:
            raise ValueError("choose MixUp or CutMix, not both")
        if self.min_area is not None and not 0 < self.min_area <= 1:
            raise ValueError(f"augment.min_area must be in (0, 1]; got {self.min_area}")
        if self.pad is not None and self.pad < 0:
            raise ValueError(f"augment.pad must be 0 or more; got {self.pad}")

    def resolved(self, input_side: int, image_side: int | None = None) -> tuple[Augment, str]:
        """This augmentation with ``auto`` and unset values decided for a network input of
        ``input_side`` pixels fed images whose shorter side is ``image_side``; and a line
        that says what was chosen and why."""
        side = min(input_side, image_side or input_side)
        crop, why = self.crop, "augment.crop"
        if crop == "auto":
            crop = "pad" if side <= SMALL_IMAGE else "random_resized"
            why = f"{side}-px images: " + (
                f"at most {SMALL_IMAGE} px, as CIFAR recipes"
                if crop == "pad"
                else f"smallest crop about {MIN_CROP_PIXELS}×{MIN_CROP_PIXELS} px"
            )
        pad = self.pad if self.pad is not None else max(1, round(input_side / 8))
        low, high = MIN_AREA_RANGE
        rule_area = min(high, max(low, (MIN_CROP_PIXELS / side) ** 2))
        min_area = self.min_area if self.min_area is not None else round(rule_area, 2)
        out = replace(self, crop=crop, pad=pad, min_area=min_area)
        if crop == "pad":
            what = f"pad-and-crop ({pad} px)"
        elif crop == "random_resized":
            what = f"random-resized crops (area {min_area:g}–1)"
        else:
            what = "no crop"
        flip = " + flips" if self.flip else ""
        return out, f"augmentation: {what}{flip} ({why})"
