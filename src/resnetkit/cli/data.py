"""``resnetkit data inspect|export``: check a data set, or write a standard one as PNGs."""

from __future__ import annotations

import argparse
import sys

from resnetkit.data.sources import MAX_PIXELS
from resnetkit.data.standard import STANDARD

SCENES = "fashion-mnist-scenes"
BOXES = "fashion-mnist-boxes"
SIDES = {SCENES: 64, BOXES: 128}


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="data sets: inspect, export")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("inspect", help="classes, counts, sizes, bad files, duplicates, leakage")
    p.add_argument("path", help="image folder, .csv manifest, or fashion-mnist/mnist/cifar10/…")
    p.add_argument("--strict", action="store_true", help="exit 1 if anything is wrong")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="decompression-bomb limit")
    p.add_argument(
        "--task",
        choices=("segmentation", "detection"),
        default=None,
        help="for a COCO JSON folder, which task to inspect it for (default: "
        "segmentation when its annotations carry masks, else detection)",
    )
    p.add_argument("--model", default="retinanet_resnet50_fpn",
                   help="detection sets: the detector whose pyramid the anchor coverage is "
                   "computed for")  # fmt: skip
    p.add_argument(
        "--canvas",
        type=int,
        default=None,
        help="detection sets: canvas side (default: what a run would choose)",
    )
    p.add_argument(
        "--positive-iou",
        type=float,
        default=0.5,
        help="detection sets: IoU at which an anchor covers a box",
    )
    p.set_defaults(func=run_inspect)
    p = dsub.add_parser(
        "export",
        help="write a standard data set as a PNG folder, or Fashion-MNIST scenes for "
        "segmentation or detection",
    )
    p.add_argument(
        "name",
        help=f"{', '.join(STANDARD)}, {SCENES} (items on textures, VOC layout) or {BOXES} "
        "(items at many scales, COCO JSON)",
    )
    p.add_argument("out", help="new folder")
    p.add_argument("--train", type=int, default=1000, help="scenes: training scenes")
    p.add_argument("--val", type=int, default=200, help="scenes: validation scenes")
    p.add_argument("--size", type=int, default=None,
                   help=f"scenes: side in pixels ({SCENES} 64, {BOXES} 128)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="scenes: seed")
    p.set_defaults(func=run_export)


def run_inspect(args: argparse.Namespace) -> int:
    from resnetkit.data.boxes import looks_like_boxes
    from resnetkit.data.masks import looks_like_masks

    masks, boxes = looks_like_masks(args.path), looks_like_boxes(args.path)
    task = args.task
    if task is None and masks and boxes:  # COCO JSON serves both
        task = "segmentation" if _coco_has_masks(args.path) else "detection"
        other = "detection" if task == "segmentation" else "segmentation"
        print(f"COCO JSON: inspected for {task} (--task {other} for the other)")
    if task == "segmentation" or (task is None and masks):
        return _inspect_masks(args)
    if task == "detection" or (task is None and boxes):
        return _inspect_boxes(args)
    from resnetkit.data import load_data
    from resnetkit.data.inspect import format_inspection, inspect_source

    source = load_data(args.path, val_fraction=0, max_pixels=args.max_pixels)
    report = inspect_source(source, args.max_pixels)
    print(format_inspection(report))
    if args.strict and not report.clean:
        print(
            "resnetkit data inspect: --strict: the data set has problems (see above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _coco_has_masks(root: str) -> bool:
    """Whether the first annotation file of a COCO folder has any polygon or RLE mask."""
    import json
    from pathlib import Path

    first = sorted((Path(root) / "annotations").glob("instances_*.json"))[0]
    annotations = json.loads(first.read_text()).get("annotations", [])
    return any(a.get("segmentation") for a in annotations)


def _inspect_masks(args: argparse.Namespace) -> int:
    """A segmentation folder (VOC, images + masks, COCO): pairs, class pixels, faults."""
    from resnetkit.data.masks import format_mask_inspection, from_mask_folder

    source = from_mask_folder(args.path, val_fraction=0, max_pixels=args.max_pixels)
    print(format_mask_inspection(source))
    if args.strict and source.bad:
        print("resnetkit data inspect: --strict: the data set has bad pairs", file=sys.stderr)
        return 1
    return 0


def _inspect_boxes(args: argparse.Namespace) -> int:
    """A detection folder (COCO, VOC, YOLO): boxes, sizes against the anchors, coverage."""
    from resnetkit.data.boxes import from_box_folder
    from resnetkit.tasks.detect.inspect import format_box_inspection, inspect_boxes

    source = from_box_folder(args.path, val_fraction=0, max_pixels=args.max_pixels)
    report = inspect_boxes(source, args.model, args.canvas, args.positive_iou)
    print(format_box_inspection(report))
    if args.strict and source.bad:
        print("resnetkit data inspect: --strict: the data set has bad images or annotations",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def run_export(args: argparse.Namespace) -> int:
    if args.name in SIDES:
        from resnetkit.data.scenes import export_box_scenes, export_scenes

        size = args.size or SIDES[args.name]
        write, what = ((export_scenes, "VOC layout") if args.name == SCENES else
                       (export_box_scenes, "COCO JSON"))  # fmt: skip
        out = write(args.out, train=args.train, val=args.val, size=size, seed=args.seed)
        classes = "11 classes" if args.name == SCENES else "10 classes"
        print(f"wrote {out} ({what}; {args.train:,} training and {args.val:,} validation "
              f"scenes of {size}×{size}, {classes})")  # fmt: skip
        return 0
    from resnetkit.data import load_data
    from resnetkit.data.inspect import export_png

    source = load_data(args.name, val_fraction=0)
    out = export_png(source, args.out)
    counts = ", ".join(f"{split}: {len(images):,}" for split, images in source.splits.items())
    print(f"wrote {out} ({source.num_classes} classes; {counts})")
    return 0
