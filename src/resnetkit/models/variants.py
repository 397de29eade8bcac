"""The model zoo as data: one ``Variant`` row per named network.

Every model resnetkit can build is a row here; ``builder.ResNet`` turns a row into a Keras
model. Add a ResNet by adding a row, not code. Parameter counts in the comments are
trainable parameters (BN moving statistics excluded) and are asserted by the tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from resnetkit.names import unknown_name_error

Row = TypeVar("Row")


@dataclass(frozen=True)
class Variant:
    """Architecture of one named ResNet."""

    name: str
    family: str  # "seed", "cifar", "plain", "wide", "imagenet", "keras", "tiny"
    block: str  # "basic" or "bottleneck"
    depths: tuple[int, ...]  # blocks per stage
    widths: tuple[int, ...]  # basic: stage channels; bottleneck: planes (output = 4 × planes)
    stem: str = "imagenet"  # see stems.STEMS
    stem_width: int = 64
    shortcut: str = "B"  # see blocks.SHORTCUTS
    groups: int = 1
    width_per_group: int = 64  # bottleneck inner width = planes × width_per_group/64 × groups
    preact: bool = False
    post_add_relu: bool = True
    layout: str = "torch"  # see layout.LAYOUTS
    input_size: int = 224  # default (and reference) input height and width
    num_classes: int = 1000
    min_input_size: int = 32
    description: str = ""

    @property
    def stage_strides(self) -> tuple[int, ...]:
        return (1,) + (2,) * (len(self.depths) - 1)

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1


def _cifar(depth: int, *, plain: bool = False) -> Variant:
    n = (depth - 2) // 6
    kind = "plain" if plain else "cifar"
    return Variant(
        name=f"{'plain' if plain else 'resnet'}{depth}",
        family=kind,
        block="basic",
        depths=(n, n, n),
        widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        shortcut="none" if plain else "A",
        input_size=32,
        num_classes=10,
        min_input_size=8,
        description=(
            f"{depth}-layer {'plain network (no shortcuts)' if plain else 'CIFAR ResNet'}"
            " of He et al. 2015 §4.2"
        ),
    )


def _wide(depth: int, k: int) -> Variant:
    n = (depth - 4) // 6
    return Variant(
        name=f"wrn{depth}_{k}",
        family="wide",
        block="basic",
        depths=(n, n, n),
        widths=(16 * k, 32 * k, 64 * k),
        stem="cifar",
        stem_width=16,
        preact=True,
        input_size=32,
        num_classes=10,
        min_input_size=8,
        description=f"Wide ResNet WRN-{depth}-{k} (Zagoruyko & Komodakis 2016)",
    )


def _imagenet(name: str, block: str, depths: tuple[int, ...], **kw) -> Variant:
    kw.setdefault("description", "torchvision/timm layout (imports their weights exactly)")
    return Variant(
        name=name, family="imagenet", block=block, depths=depths, widths=_IN_WIDTHS, **kw
    )


def _keras(name: str, depths: tuple[int, ...], v2: bool) -> Variant:
    return Variant(
        name=name,
        family="keras",
        block="bottleneck",
        depths=depths,
        widths=_IN_WIDTHS,
        preact=v2,
        layout="keras_v2" if v2 else "keras_v1",
        description=f"keras.applications {'ResNet V2' if v2 else 'ResNet'} layout and names",
    )


_IN_WIDTHS = (64, 128, 256, 512)
_R50, _R101, _R152 = (3, 4, 6, 3), (3, 4, 23, 3), (3, 8, 36, 3)


def by_name(kind: str, rows: Iterable[Row]) -> dict[str, Row]:
    """A registry table ``{row.name: row}`` that refuses a name given twice.

    A dict comprehension would keep the last of two equal names without a word; here the
    module that defines the table fails at import with a ValueError naming the duplicate.
    """
    table: dict[str, Row] = {}
    for row in rows:
        if row.name in table:
            raise ValueError(f"two {kind} entries are named {row.name!r}: names must be unique")
        table[row.name] = row
    return table


VARIANTS: dict[str, Variant] = by_name(
    "model",
    [
        Variant(
            name="seed",
            family="seed",
            block="basic",
            depths=(10,),
            widths=(64,),
            stem="seed",
            post_add_relu=False,
            layout="seed",
            num_classes=10,
            min_input_size=16,
            description="the original article's network: 7×7 stem, 10 residual blocks of 64",
        ),
        Variant(
            name="resnet_tiny",
            family="tiny",
            block="basic",
            depths=(1, 1),
            # 16/32 rather than 8/16: TF 2.21's oneDNN crashes in the filter gradient of a
            # 1×1 stride-2 conv with exactly 8 input channels at 64/128 px.
            widths=(16, 32),
            stem="cifar",
            stem_width=16,
            input_size=32,
            num_classes=10,
            min_input_size=8,
            description="two-block network for tests and smoke runs",
        ),
        Variant(
            name="resnet8_fast",
            family="cifar",
            block="basic",
            depths=(1, 1, 1),
            widths=(32, 64, 128),
            stem="cifar_s2",
            stem_width=32,
            input_size=28,
            num_classes=10,
            min_input_size=16,
            description=(
                "8-layer ResNet for small images: stride-2 stem, 32-64-128 channels, "
                "projection shortcuts; the fast Fashion-MNIST recipe's model"
            ),
        ),
        *[_cifar(d) for d in (20, 32, 44, 56, 110, 1202)],
        *[_cifar(d, plain=True) for d in (20, 32, 44, 56, 110)],
        *[_wide(d, k) for d, k in ((16, 4), (16, 8), (28, 10), (40, 4))],
        _imagenet("resnet18", "basic", (2, 2, 2, 2)),
        _imagenet("resnet34", "basic", (3, 4, 6, 3)),
        _imagenet("resnet50", "bottleneck", _R50),
        _imagenet("resnet101", "bottleneck", _R101),
        _imagenet("resnet152", "bottleneck", _R152),
        _imagenet("resnext50_32x4d", "bottleneck", _R50, groups=32, width_per_group=4),
        _imagenet("resnext101_32x8d", "bottleneck", _R101, groups=32, width_per_group=8),
        _imagenet("resnext101_64x4d", "bottleneck", _R101, groups=64, width_per_group=4),
        _imagenet("wide_resnet50_2", "bottleneck", _R50, width_per_group=128),
        _imagenet("wide_resnet101_2", "bottleneck", _R101, width_per_group=128),
        _imagenet("resnet18d", "basic", (2, 2, 2, 2), stem="deep", shortcut="D"),
        _imagenet("resnet50d", "bottleneck", _R50, stem="deep", shortcut="D"),
        _imagenet("resnetv2_50", "bottleneck", _R50, preact=True),
        _keras("resnet50_keras", _R50, v2=False),
        _keras("resnet101_keras", _R101, v2=False),
        _keras("resnet152_keras", _R152, v2=False),
        _keras("resnet50v2_keras", _R50, v2=True),
        _keras("resnet101v2_keras", _R101, v2=True),
        _keras("resnet152v2_keras", _R152, v2=True),
    ],
)


def get_variant(name: str) -> Variant:
    """The ``Variant`` row for ``name``; a ValueError lists the closest valid names."""
    if name not in VARIANTS:
        raise unknown_name_error("model", name, VARIANTS)
    return VARIANTS[name]
