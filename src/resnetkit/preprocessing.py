"""``Preprocessing``: how raw uint8 images become a network's input.

A core leaf: models store it, weights specs carry it, the data pipeline, prediction,
export and serving read it. It imports nothing from resnetkit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Preprocessing:
    """How raw RGB uint8 images become a network's input.

    ``mode``: ``"torch"`` (RGB/255, then (x - mean) / std), ``"caffe"`` (RGB→BGR, subtract
    the BGR ``mean`` in 0..255, no scaling: Keras ResNet v1) or ``"tf"`` (x/127.5 - 1: Keras
    ResNet V2). Evaluation resizes the shorter side to ``resize_size`` with
    ``interpolation``, then center-crops ``crop_size``.
    """

    mode: str = "torch"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop_size: int = 224
    resize_size: int = 256
    interpolation: str = "bilinear"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(**{**d, "mean": tuple(d["mean"]), "std": tuple(d["std"])})
