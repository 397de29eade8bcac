"""The registry of pretrained weights: where each file lives, how to verify it, and the
preprocessing its network was trained with.

Preprocessing travels with the weights: a model loaded from a registry entry carries its
``Preprocessing``, and the data pipeline, prediction and export read it from there.

Checksums are the ones the publishers give: keras.applications pins an MD5 per file;
torchvision and timm put the first 8 hex digits of the file's SHA-256 into its name (and
verify that prefix); a full SHA-256 is used where one is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from resnetkit.download import FileRef
from resnetkit.models.variants import by_name
from resnetkit.names import unknown_name_error
from resnetkit.preprocessing import CAFFE_BGR_MEAN, Preprocessing

CAFFE = Preprocessing(mode="caffe", mean=CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0))
KERAS_TF = Preprocessing(mode="tf", mean=(127.5,) * 3, std=(127.5,) * 3)
TV_V1 = Preprocessing()
TV_V2 = Preprocessing(resize_size=232)
TIMM_RA2 = Preprocessing(resize_size=256, interpolation="bicubic")  # crop_pct 0.875
TIMM_A1 = Preprocessing(resize_size=235, interpolation="bicubic")  # crop_pct 0.95: floor(224/0.95)


@dataclass(frozen=True)
class WeightSpec:
    """A named set of pretrained weights for one zoo architecture."""

    name: str
    arch: str  # zoo model name
    format: str  # "keras_h5" or "torch" (state dict: .pth or .safetensors)
    file: FileRef
    preprocessing: Preprocessing
    notop_file: FileRef | None = None  # Keras publishes a headless file too
    classes: str = "imagenet1k"
    top1: float | None = None  # ImageNet-1k validation top-1 (%), as published
    source: str = ""
    extras: dict = field(default_factory=dict)

    def file_for(self, include_top: bool) -> FileRef:
        return self.file if include_top or self.notop_file is None else self.notop_file


_KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_TV_BASE = "https://download.pytorch.org/models/"
_TIMM_BASE = "https://github.com/rwightman/pytorch-image-models/releases/download/"


def _keras(short: str, arch: str, top_md5: str, notop_md5: str, top1: float) -> WeightSpec:
    stem = f"{_KERAS_BASE}{short}_weights_tf_dim_ordering_tf_kernels"
    return WeightSpec(
        name=f"{short}.keras_imagenet",
        arch=arch,
        format="keras_h5",
        file=FileRef(f"{stem}.h5", top_md5, "md5"),
        notop_file=FileRef(f"{stem}_notop.h5", notop_md5, "md5"),
        preprocessing=KERAS_TF if "v2" in short else CAFFE,
        top1=top1,
        source="keras.applications",
    )


def _tv(arch: str, tag: str, filename: str, top1: float) -> WeightSpec:
    return WeightSpec(
        name=f"{arch}.{tag}_in1k",
        arch=arch,
        format="torch",
        file=FileRef(_TV_BASE + filename, filename.rsplit("-", 1)[1].split(".")[0]),
        preprocessing=TV_V2 if tag == "tv2" or arch == "resnext101_64x4d" else TV_V1,
        top1=top1,
        source=f"torchvision IMAGENET1K_{'V2' if tag == 'tv2' else 'V1'}",
    )


def _timm(arch: str, path: str, prep: Preprocessing, top1: float | None, tag: str) -> WeightSpec:
    filename = path.rsplit("/", 1)[1]
    return WeightSpec(
        name=f"{arch}.{tag}",
        arch=arch,
        format="torch",
        file=FileRef(_TIMM_BASE + path, filename.rsplit("-", 1)[1].split(".")[0]),
        preprocessing=prep,
        top1=top1,
        source="timm",
    )


REGISTRY: dict[str, WeightSpec] = by_name(
    "pretrained weights",
    [
        # MD5s as pinned by keras.applications 3.15; top-1 from its documentation.
        _keras(
            "resnet50",
            "resnet50_keras",
            "2cb95161c43110f7111970584f804107",
            "4d473c1dd8becc155b73f8504c6f6626",
            74.9,
        ),
        _keras(
            "resnet101",
            "resnet101_keras",
            "f1aeb4b969a6efcfb50fad2f0c20cfc5",
            "88cf7a10940856eca736dc7b7e228a21",
            76.4,
        ),
        _keras(
            "resnet152",
            "resnet152_keras",
            "100835be76be38e30d865e96f2aaae62",
            "ee4c566cf9a93f14d82f913c2dc6dd0c",
            76.6,
        ),
        _keras(
            "resnet50v2",
            "resnet50v2_keras",
            "3ef43a0b657b3be2300d5770ece849e0",
            "fac2f116257151a9d068a22e544a4917",
            76.0,
        ),
        _keras(
            "resnet101v2",
            "resnet101v2_keras",
            "6343647c601c52e1368623803854d971",
            "c0ed64b8031c3730f411d2eb4eea35b5",
            77.2,
        ),
        _keras(
            "resnet152v2",
            "resnet152v2_keras",
            "a49b44d1979771252814e80f8ec446f9",
            "ed17cf2e0169df9d443503ef94b23b33",
            78.0,
        ),
        # torchvision 0.29 weights and their published ImageNet-1k top-1.
        _tv("resnet18", "tv", "resnet18-f37072fd.pth", 69.758),
        _tv("resnet34", "tv", "resnet34-b627a593.pth", 73.314),
        _tv("resnet50", "tv", "resnet50-0676ba61.pth", 76.130),
        _tv("resnet50", "tv2", "resnet50-11ad3fa6.pth", 80.858),
        _tv("resnet101", "tv", "resnet101-63fe2227.pth", 77.374),
        _tv("resnet101", "tv2", "resnet101-cd907fc2.pth", 81.886),
        _tv("resnet152", "tv", "resnet152-394f9c45.pth", 78.312),
        _tv("resnet152", "tv2", "resnet152-f82ba261.pth", 82.284),
        _tv("resnext50_32x4d", "tv", "resnext50_32x4d-7cdf4587.pth", 77.618),
        _tv("resnext50_32x4d", "tv2", "resnext50_32x4d-1a0047aa.pth", 81.198),
        _tv("resnext101_32x8d", "tv", "resnext101_32x8d-8ba56ff5.pth", 79.312),
        _tv("resnext101_32x8d", "tv2", "resnext101_32x8d-110c445d.pth", 82.834),
        _tv("resnext101_64x4d", "tv", "resnext101_64x4d-173b62eb.pth", 83.246),
        _tv("wide_resnet50_2", "tv", "wide_resnet50_2-95faca4d.pth", 78.468),
        _tv("wide_resnet50_2", "tv2", "wide_resnet50_2-9ba9bcbe.pth", 81.602),
        _tv("wide_resnet101_2", "tv", "wide_resnet101_2-32ee1156.pth", 78.848),
        _tv("wide_resnet101_2", "tv2", "wide_resnet101_2-d733dc28.pth", 82.510),
        # timm 1.0.31 pretrained configs (legacy release URLs that carry a hash prefix).
        _timm("resnet18d", "v0.1-weights/resnet18d_ra2-48a79e06.pth", TIMM_RA2, None, "timm_in1k"),
        _timm("resnet50d", "v0.1-weights/resnet50d_ra2-464e36ba.pth", TIMM_RA2, None, "timm_in1k"),
        _timm(
            "resnet50",
            "v0.1-rsb-weights/resnet50_a1_0-14fe96d1.pth",
            TIMM_A1,
            80.38,
            "timm_a1_in1k",
        ),
    ],
)


def get_weight_spec(name: str) -> WeightSpec:
    if name not in REGISTRY:
        raise unknown_name_error("pretrained weights", name, REGISTRY)
    return REGISTRY[name]


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names in the standard (synset-sorted) index order."""
    text = resources.files("resnetkit.weights").joinpath("imagenet_classes.txt").read_text()
    return text.splitlines()
