"""Training augmentation as a config: the ``augment`` section, without TensorFlow.

The pipeline (pipeline.py) applies it; the typed config and the CLI only describe it, so
this module imports nothing heavier than the standard library.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

Crop = Literal["random_resized", "pad", "none"]


@dataclass(frozen=True)
class Augment:
    """Training augmentation, chosen by config. Defaults: random-resized-crop and flips."""

    crop: Crop = "random_resized"  # random-resized-crop, pad-and-crop, or none
    min_area: float = 0.08  # random-resized-crop area range [min_area, 1]
    pad: int = 4  # pixels of zero padding for "pad"
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

    def __post_init__(self) -> None:
        crops = typing.get_args(Crop)
        if self.crop not in crops:
            raise ValueError(f"augment.crop must be one of {', '.join(crops)}; got {self.crop!r}")
        if self.mixup and self.cutmix:
            raise ValueError("choose MixUp or CutMix, not both")
