"""The segmentation zoo table: every ``HEAD_BACKBONE`` model with its measured parameters
and MACs at its default size, shipped as ``tasks/segment/zoo.json`` for
``resnetkit models --task segmentation``. After a change to the heads, regenerate it with

    python -m resnetkit.tasks.segment.zoo --write

The default size is torchvision's segmentation size, 520×520, for backbones made for 224
pixels, and the backbone's own size for small-image ones (CIFAR family: 32); the classes are
Pascal VOC's 21. Figures are those of the model without the auxiliary head.
"""

from __future__ import annotations

import sys
from pathlib import Path

from resnetkit.models.variants import VARIANTS
from resnetkit.models.zoo import measured
from resnetkit.tasks.segment.model import HEADS, create_segmenter, list_segmenters, split_name
from resnetkit.zoo_table import (
    SEGMENTATION_TABLE,
    SEGMENTATION_WRITE_COMMAND,
    ZooEntry,
    write_command,
    write_measured,
)

SEGMENTATION_SIZE = 520  # torchvision's evaluation size for its segmentation models
NUM_CLASSES = 21


def default_size(backbone: str) -> int:
    size = VARIANTS[backbone].input_size
    return SEGMENTATION_SIZE if size >= 224 else size


def measure(name: str) -> ZooEntry:
    """Build ``name`` at its default size and measure it."""
    head, backbone = split_name(name)
    size = default_size(backbone)
    model = create_segmenter(name, num_classes=NUM_CLASSES, input_shape=(size, size, 3))
    about = f"{HEADS[head].description}; {backbone} backbone at output stride {model.output_stride}"
    return measured(model, name, head, NUM_CLASSES, about)


def write_table(path: str | Path | None = None) -> Path:
    """Measure every segmentation model and write the table (default: the shipped file)."""
    return write_measured(list_segmenters(), measure, SEGMENTATION_TABLE,
                          SEGMENTATION_WRITE_COMMAND, path)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return write_command(
        argv,
        prog="python -m resnetkit.tasks.segment.zoo",
        what="every segmentation model",
        table=SEGMENTATION_TABLE,
        write=write_table,
    )


if __name__ == "__main__":
    sys.exit(main())
