"""The detection zoo table: every ``retinanet_BACKBONE_fpn`` with its measured parameters
and MACs, shipped as ``tasks/detect/zoo.json`` for ``resnetkit models --task detection``.
After a change to the detector, regenerate it with

    python -m resnetkit.tasks.detect.zoo --write

Sizes: a 512×512 canvas (the largest a run chooses by itself) for backbones made for 224
pixels, 128×128 for small-image ones; COCO's 91 classes, as torchvision counts them;
torchvision's anchors (9 per location) and 256-channel pyramid, or the backbone's width
where narrower (as a run chooses, task.pyramid_width). BatchNorm is counted trainable.
"""

from __future__ import annotations

import sys
from pathlib import Path

from resnetkit.models.variants import VARIANTS
from resnetkit.models.zoo import measured
from resnetkit.tasks.detect.model import backbone_of, create_detector, list_detectors
from resnetkit.tasks.detect.task import pyramid_width
from resnetkit.zoo_table import (
    DETECTION_TABLE,
    DETECTION_WRITE_COMMAND,
    ZooEntry,
    write_command,
    write_measured,
)

LARGE, SMALL = 512, 128  # canvas for ImageNet-sized and small-image backbones
NUM_CLASSES = 91  # COCO's category ids, as torchvision's detectors count them


def default_size(backbone: str) -> int:
    return LARGE if VARIANTS[backbone].input_size >= 224 else SMALL


def measure(name: str) -> ZooEntry:
    """Build ``name`` at its default size and measure it."""
    backbone = backbone_of(name)
    size = default_size(backbone)
    channels, _ = pyramid_width(name, None)
    model = create_detector(name, num_classes=NUM_CLASSES, input_shape=(size, size, 3),
                            channels=channels)  # fmt: skip
    about = f"RetinaNet, {backbone} backbone, {len(model.level_names)}-level {channels}-channel FPN"
    return measured(model, name, "retinanet", NUM_CLASSES, about)


def write_table(path: str | Path | None = None) -> Path:
    """Measure every detector and write the table (default: the shipped file)."""
    return write_measured(list_detectors(), measure, DETECTION_TABLE, DETECTION_WRITE_COMMAND,
                          path)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return write_command(
        argv,
        prog="python -m resnetkit.tasks.detect.zoo",
        what="every detector",
        table=DETECTION_TABLE,
        write=write_table,
    )


if __name__ == "__main__":
    sys.exit(main())
