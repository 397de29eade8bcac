"""``resnetkit weights list|fetch|import``: the pretrained-weights registry and conversions."""

from __future__ import annotations

import argparse
import json
import sys

from resnetkit.cli.models import model_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    weights = sub.add_parser("weights", help="pretrained weights: list, fetch, import")
    wsub = weights.add_subparsers(dest="weights_command", required=True)
    p = wsub.add_parser("list", help="every registered set of weights with its preprocessing")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run_list)
    p = wsub.add_parser("fetch", help="download (or find) a registered file and verify it")
    p.add_argument("name", help="registry name, see `resnetkit weights list`")
    p.add_argument("--no-top", action="store_true", help="the headless file (Keras weights)")
    p.set_defaults(func=run_fetch)
    p = wsub.add_parser(
        "import", help="convert a weights file into .keras/.weights.h5/.safetensors"
    )
    p.add_argument("source", help="weights file (.h5, .pth, .safetensors, .npz) or registry name")
    p.add_argument("--arch", required=True, help="zoo model name, e.g. resnet50")
    p.add_argument("--out", required=True, help="output: .keras, .weights.h5 or .safetensors")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-size", nargs=3, type=int, metavar=("H", "W", "C"))
    p.set_defaults(func=run_import)


def run_list(args: argparse.Namespace) -> int:
    from resnetkit.weights import REGISTRY

    rows = [
        {
            "name": spec.name,
            "arch": spec.arch,
            "source": spec.source,
            "top1": spec.top1,
            "url": spec.file.url,
            "checksum": f"{spec.file.algorithm}:{spec.file.checksum}",
            "preprocessing": spec.preprocessing.to_dict(),
        }
        for spec in REGISTRY.values()
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    for spec, row in zip(REGISTRY.values(), rows, strict=True):
        p = spec.preprocessing
        norm = {
            "torch": f"RGB/255, mean {p.mean}, std {p.std}",
            "caffe": f"BGR, minus {p.mean}",
            "tf": "x/127.5 - 1",
        }[p.mode]
        top1 = "" if spec.top1 is None else f", top-1 {spec.top1}%"
        print(f"{spec.name}  ({spec.arch}; {spec.source}{top1})")
        resize = f"resize {p.resize_size} ({p.interpolation}) -> crop {p.crop_size}"
        print(f"    {resize}; {p.mode}: {norm}")
        print(f"    {row['url']}  [{row['checksum']}]")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from resnetkit.weights import DownloadUnavailable, fetch_file, get_weight_spec

    spec = get_weight_spec(args.name)
    try:
        path = fetch_file(spec.file_for(include_top=not args.no_top))
    except DownloadUnavailable as e:
        print(f"resnetkit weights fetch: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from resnetkit.models import count_params
    from resnetkit.weights import create_model
    from resnetkit.weights.convert import save_artifact

    model = create_model(args.arch, weights=args.source, **model_options(args))
    out = save_artifact(model, args.out)
    print(f"{args.source} -> {out} ({args.arch}, {count_params(model)[1]:,} parameters)")
    return 0
