"""``resnetkit models`` (the zoo table) and ``resnetkit summary`` (one model in detail)."""

from __future__ import annotations

import argparse
import json

from resnetkit.zoo_table import TABLES, ZooEntry, shipped_table

HEADER = ("name", "family", "trainable params", "total params", "GMACs", "input", "classes")
RIGHT_ALIGNED = {2, 3, 4, 6}  # the number columns
NOTE = (
    "\ntrainable params: learnable weights (PyTorch's convention); total params: Keras' "
    "count_params(), BN moving statistics included. GMACs: convolutions + dense layers, "
    "one image at the listed input size."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list every model with parameters and GMACs")
    families = ", ".join(dict.fromkeys(e.family for e in shipped_table()))
    p.add_argument(
        "--task",
        choices=tuple(TABLES),
        default="classification",
        help="the classifiers (default), the segmentation models (HEAD_BACKBONE names, at "
        "520×520 for ImageNet backbones, 21 classes) or the detectors (retinanet_BACKBONE_fpn, "
        "at 512×512, 91 classes)",
    )
    p.add_argument(
        "--family", help=f"only this family ({families}; segmentation: a head, e.g. unet)"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="measure again (build every model), ignore the shipped table",
    )
    p.set_defaults(func=run_models)

    p = sub.add_parser("summary", help="print one model's layers, parameters, GMACs and features")
    p.add_argument("name", help="model name, see `resnetkit models`")
    p.add_argument("--input-size", nargs=3, type=int, metavar=("H", "W", "C"))
    p.add_argument("--num-classes", type=int)
    p.add_argument("--softmax", action="store_true", help="end with softmax instead of logits")
    p.add_argument("--no-top", action="store_true", help="leave out pooling and classifier")
    p.set_defaults(func=run_summary)


def run_models(args: argparse.Namespace) -> int:
    """The shipped table (no model is built), or every model measured with --no-cache."""
    if args.task != "classification":
        entries = shipped_table(args.family, TABLES[args.task])
        if args.no_cache:
            from importlib import import_module

            package = {"segmentation": "segment", "detection": "detect"}[args.task]
            measure = import_module(f"resnetkit.tasks.{package}.zoo").measure
            entries = [measure(e.name) for e in entries]
    elif args.no_cache:
        from resnetkit.models import list_models
        from resnetkit.models.zoo import zoo_table

        entries = zoo_table(list_models(args.family), remeasure=True)
    else:
        entries = shipped_table(args.family)
    if args.format == "json":
        print(json.dumps([_json_row(e) for e in entries], indent=2))
        return 0
    print(format_table(entries))
    print(NOTE)
    return 0


def _json_row(e: ZooEntry) -> dict:
    return {**e.to_dict(), "gmacs": round(e.gmacs, 4)}


def format_table(entries: list[ZooEntry]) -> str:
    """The zoo as aligned text columns under a header."""
    rows = [
        (
            e.name,
            e.family,
            f"{e.trainable_params:,}",
            f"{e.total_params:,}",
            f"{e.gmacs:.4f}",
            "×".join(map(str, e.input_size)),
            str(e.num_classes),
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in RIGHT_ALIGNED else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADER), rule, *map(line, rows)])


def model_options(args: argparse.Namespace) -> dict:
    """create_model options from the common flags (--input-size, --num-classes, ...)."""
    options = {}
    if args.input_size is not None:
        options["input_shape"] = tuple(args.input_size)
    if args.num_classes is not None:
        options["num_classes"] = args.num_classes
    if getattr(args, "softmax", False):
        options["classifier_activation"] = "softmax"
    if getattr(args, "no_top", False):
        options["include_top"] = False
    return options


def run_summary(args: argparse.Namespace) -> int:
    from resnetkit.models import count_macs, count_params, create_model

    model = create_model(args.name, **model_options(args))
    model.summary(line_length=120, print_fn=lambda text, **_: print(text, end=""))
    trainable, total = count_params(model)
    macs = count_macs(model)
    print(f"\n{args.name}: input {tuple(model.input_shape[1:])}")
    print(f"  trainable params (PyTorch convention): {trainable:,}")
    print(f"  total params (Keras count_params):      {total:,}")
    print(f"  forward GMACs (conv + dense):           {macs.gmacs:.4f}")
    print(f"  pooling operations:                     {macs.pooling:,}")
    print("  features (name: layer, stride, channels):")
    for name, info in model.feature_info.items():
        print(f"    {name}: {info.layer}, stride {info.stride}, {info.channels} channels")
    return 0
