"""Command-line interface: parse arguments, call the library, print the result.

Every command is a thin wrapper; the work happens in ``resnetkit``'s modules, which are
imported inside the commands so that ``resnetkit --help`` answers without loading
TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from resnetkit.data.sources import MAX_PIXELS  # Pillow and NumPy only: --help stays fast
from resnetkit.download import DownloadUnavailable


def _cmd_models(args: argparse.Namespace) -> int:
    from resnetkit.models import list_models
    from resnetkit.models.zoo import zoo_table

    entries = zoo_table(list_models(args.family), use_cache=not args.no_cache)
    if args.format == "json":
        rows = [
            {
                "name": e.name,
                "family": e.family,
                "trainable_params": e.trainable_params,
                "total_params": e.total_params,
                "gmacs": round(e.gmacs, 4),
                "input_size": list(e.input_size),
                "num_classes": e.num_classes,
                "description": e.description,
            }
            for e in entries
        ]
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "family", "trainable params", "total params", "GMACs", "input", "classes")
    table = [
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
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    right = {2, 3, 4, 6}

    def line(row):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print(line(row))
    print(
        "\ntrainable params: learnable weights (PyTorch's convention); total params: Keras' "
        "count_params(), BN moving statistics included. GMACs: convolutions + dense layers, "
        "one image at the listed input size."
    )
    return 0


def _model_options(args: argparse.Namespace) -> dict:
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


def _cmd_summary(args: argparse.Namespace) -> int:
    from resnetkit.models import count_macs, count_params, create_model

    model = create_model(args.name, **_model_options(args))
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


def _cmd_weights_list(args: argparse.Namespace) -> int:
    from resnetkit.weights import REGISTRY

    rows = []
    for spec in REGISTRY.values():
        p = spec.preprocessing
        rows.append(
            {
                "name": spec.name,
                "arch": spec.arch,
                "source": spec.source,
                "top1": spec.top1,
                "url": spec.file.url,
                "checksum": f"{spec.file.algorithm}:{spec.file.checksum}",
                "preprocessing": p.to_dict(),
            }
        )
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


def _cmd_weights_fetch(args: argparse.Namespace) -> int:
    from resnetkit.weights import DownloadUnavailable, fetch_file, get_weight_spec

    spec = get_weight_spec(args.name)
    try:
        path = fetch_file(spec.file_for(include_top=not args.no_top))
    except DownloadUnavailable as e:
        print(f"resnetkit weights fetch: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _cmd_weights_import(args: argparse.Namespace) -> int:
    from resnetkit.models import count_params
    from resnetkit.weights import create_model
    from resnetkit.weights.convert import save_artifact

    model = create_model(args.arch, weights=args.source, **_model_options(args))
    out = save_artifact(model, args.out)
    print(f"{args.source} -> {out} ({args.arch}, {count_params(model)[1]:,} parameters)")
    return 0


def _cmd_data_inspect(args: argparse.Namespace) -> int:
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


def _cmd_data_export(args: argparse.Namespace) -> int:
    from resnetkit.data import load_data
    from resnetkit.data.inspect import export_png

    source = load_data(args.name, val_fraction=0)
    out = export_png(source, args.out)
    counts = ", ".join(f"{split}: {len(images):,}" for split, images in source.splits.items())
    print(f"wrote {out} ({source.num_classes} classes; {counts})")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from resnetkit.evaluate.evaluation import evaluate_on_data
    from resnetkit.tasks.classify.evaluation import format_metrics
    from resnetkit.tasks.classify.predictor import load_classifier

    classifier = load_classifier(args.model)
    ev, out = evaluate_on_data(
        classifier,
        args.data,
        split=args.split,
        tta=args.tta,
        batch_size=args.batch_size,
        out=args.out,
    )
    print(format_metrics(ev.metrics))
    print(
        f"\nwrote {out} (metrics.json, predictions.csv, confusion matrices, reliability, mistakes)"
    )
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from resnetkit.serve.server import load_predictor
    from resnetkit.tasks.classify.predictor import expand_paths
    from resnetkit.tasks.classify.rows import format_table, predict_files, write_rows

    paths = expand_paths(args.images)
    classifier = load_predictor(args.model, args.runtime)  # a run, .keras or an export
    rows = predict_files(
        classifier, paths, top_k=args.top_k, batch_size=args.batch_size, tta=args.tta
    )
    print(format_table(rows))
    if args.output:
        print(f"wrote {write_rows(rows, args.output)}")
    failed = sum("error" in r for r in rows)
    if failed:
        print(f"{failed} of {len(rows)} file(s) could not be read (see above)", file=sys.stderr)
    return 1 if failed == len(rows) else 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from resnetkit.explain import class_index_by_name, explain_files
    from resnetkit.tasks.classify.predictor import expand_paths, load_classifier

    def shown(text) -> str:  # file names that are not UTF-8 must not crash print()
        return str(text).encode("utf-8", "backslashreplace").decode("utf-8")

    paths = expand_paths(args.images)
    classifier = load_classifier(args.model)
    names = classifier.class_names
    class_index = None if args.class_name is None else class_index_by_name(names, args.class_name)
    result = explain_files(
        classifier,
        paths,
        args.out,
        layer=args.layer,
        class_index=class_index,
        method=args.method,
        alpha=args.alpha,
        batch_size=args.batch_size,
    )
    for row in result.rows:
        if not hasattr(row, "output"):
            print(f"{shown(row.path)}: unreadable: {row.reason}")
            continue
        predicted = names[row.predicted_index]
        note = "" if row.predicted_index == row.class_index else f", predicted {predicted}"
        explained = f"{names[row.class_index]} (p={row.probability:.3f}{note})"
        print(f"{shown(row.path)}: {explained} -> {shown(row.output)}")
    if result.grid is not None:
        print(f"wrote {shown(result.grid)} ({result.grid_count} images)")
    failed = len(result.bad)
    if failed:
        total = len(result.rows)
        print(f"{failed} of {total} file(s) could not be read (see above)", file=sys.stderr)
    return 1 if failed == len(result.rows) else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from resnetkit.export import export_model

    result = export_model(
        args.model,
        args.out,
        args.format,
        include_preprocessing=args.include_preprocessing,
        quantize=args.quantize,
        fold_bn=not args.no_fold,
        data=args.data,
        check_count=args.check_images,
        min_agreement=args.min_agreement,
        overwrite=args.overwrite,
    )
    parity = result.card["parity"]
    print(f"parity ({parity['images']} images, {parity['data']}): {parity['verdict']}")
    print(
        f"  top-1 agreement {parity['top1_agreement']:.2%}, mean abs difference "
        f"{parity['mean_abs_diff']:.2e}"
    )
    size = result.card["artifact_file"]["bytes"]
    print(f"wrote {result.artifact} ({size / 1e6:.2f} MB), labels.txt, model_card.json")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from resnetkit.serve import ServeConfig, serve

    config = ServeConfig(
        host=args.host,
        port=args.port,
        max_batch=1 if args.no_batching else args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_images=args.max_images,
        timeout_s=args.timeout,
        top_k=args.top_k,
    )
    serve(args.model, config, runtime=args.runtime, log=lambda text: print(text, flush=True))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from resnetkit.report import write_report

    print(f"wrote {write_report(args.run_dir)}")
    return 0


def _model_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _cmd_analyze_gradients(args: argparse.Namespace) -> int:
    from resnetkit.analyze.gradients import (
        GRADIENTS_JSON,
        GRADIENTS_PNG,
        format_gradients,
        run_gradients,
    )

    result = run_gradients(
        _model_list(args.models),
        data=args.data,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out=args.out,
    )
    print(format_gradients(result))
    print(
        f"\nwrote {os.path.join(args.out, GRADIENTS_JSON)}, {os.path.join(args.out, GRADIENTS_PNG)}"
    )
    return 0


def _cmd_analyze_degradation(args: argparse.Namespace) -> int:
    from resnetkit.analyze.degradation import (
        DEGRADATION_JSON,
        DEGRADATION_PNG,
        format_degradation,
        run_degradation,
    )

    result = run_degradation(
        _model_list(args.models),
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        train_subset=args.train_subset or None,
        test_subset=args.test_subset,
        lr=args.lr,
        seed=args.seed,
        out=args.out,
        runs_dir=args.runs_dir,
        zero_init_residual=args.zero_init_residual,
        command=(
            f"resnetkit analyze degradation --models {args.models} --data {args.data} "
            f"--epochs {args.epochs} --batch-size {args.batch_size} --train-subset "
            f"{args.train_subset} --test-subset {args.test_subset} --lr {args.lr} "
            f"--seed {args.seed}{' --zero-init-residual' if args.zero_init_residual else ''} "
            f"--out {args.out}"
        ),
    )
    print()
    print(format_degradation(result))
    print(
        f"\nwrote {os.path.join(args.out, DEGRADATION_JSON)}, "
        f"{os.path.join(args.out, DEGRADATION_PNG)}"
    )
    return 0


TRAIN_FLAGS = {  # flag → config key; each is a shortcut for --set key=value
    "model": "model.name",
    "weights": "model.weights",
    "data": "data.source",
    "epochs": "schedule.epochs",
    "batch_size": "data.batch_size",
    "lr": "optim.lr",
    "seed": "run.seed",
    "precision": "run.precision",
    "strategy": "run.strategy",
    "on_bad_image": "data.on_bad_image",
}
FINETUNE_FLAGS = {
    **{k: v for k, v in TRAIN_FLAGS.items() if k not in ("model", "weights", "strategy")},
    "source": "finetune.source",
    "arch": "model.name",
    "strategy": "finetune.strategy",
    "distribute": "run.strategy",
    "trainable_stages": "finetune.trainable_stages",
    "bn_policy": "finetune.bn_policy",
    "lr_decay": "finetune.lr_decay",
    "head_lr_mult": "finetune.head_lr_mult",
    "head_epochs": "finetune.head_epochs",
    "patience": "finetune.patience",
    "class_weight": "data.class_weight",
    "val_fraction": "data.val_fraction",
}


def _cmd_train(args: argparse.Namespace) -> int:
    return _run(args, "train", TRAIN_FLAGS, preset=())


def _cmd_finetune(args: argparse.Namespace) -> int:
    from resnetkit.transfer.finetune import PRESET

    if not args.resume and args.source is None and not args.config:
        raise ValueError("--from is required: a registry name, a weights file or a run directory")
    return _run(args, "finetune", FINETUNE_FLAGS, preset=PRESET)


def _run(args: argparse.Namespace, command: str, flags: dict, preset) -> int:
    """``train`` and ``finetune``: flags → config overrides, run, exit codes."""
    from resnetkit.training.callbacks import RunInterrupted, TrainingDiverged
    from resnetkit.training.checkpoint import CheckpointError
    from resnetkit.training.config import load_config

    given = {f: getattr(args, f) for f in flags if getattr(args, f) is not None}
    if args.resume:
        if args.config or args.set or given:
            raise ValueError("--resume takes the run's own config.yaml; give no other options")
        config, run_dir = None, args.resume
    else:
        overrides = [f"{flags[f]}={_yaml_value(v)}" for f, v in given.items()]
        if args.deterministic:
            overrides.append("run.deterministic=true")
        config = load_config(args.config, [*overrides, *(args.set or [])], preset=preset)
        run_dir = args.run_dir
    from resnetkit.training.train import train

    try:
        train(config, run_dir, resume=bool(args.resume))
    except RunInterrupted as e:
        where = args.resume or run_dir or "RUN_DIR"
        print(
            f"resnetkit {command}: stopped by {e}; checkpoint saved. "
            f"Resume with: resnetkit {command} --resume {where}",
            file=sys.stderr,
        )
        return 143 if "SIGTERM" in str(e) else 130
    except (TrainingDiverged, CheckpointError, PermissionError) as e:
        print(f"resnetkit {command}: error: {e}", file=sys.stderr)
        return 1
    return 0


def _yaml_value(value) -> str:
    """A flag's value as the YAML text of an override (comma lists become lists)."""
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return str(value)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options that train and finetune share."""
    p.add_argument("--config", help="YAML config file, e.g. configs/fashion_mnist_fast.yaml")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    p.add_argument("--data", help="data set name, image folder or .csv manifest")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate for batch 128 (scaled linearly)")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"))
    p.add_argument("--on-bad-image", choices=("skip", "error"))
    p.add_argument("--deterministic", action="store_true", help="deterministic TensorFlow ops")
    p.add_argument("--run-dir", help="new run directory (default: runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")


# Runtimes of exported artifacts (export/artifacts.py RUNTIMES, which imports NumPy).
_RUNTIMES = ("tensorflow", "onnxruntime", "litert", "keras")


def build_parser() -> argparse.ArgumentParser:
    from resnetkit import __version__

    parser = argparse.ArgumentParser(
        prog="resnetkit", description="Build, train, evaluate and export ResNets (Keras 3)."
    )
    parser.add_argument("--version", action="version", version=f"resnetkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list every model with parameters and GMACs")
    p.add_argument(
        "--family", help="only this family (seed, tiny, cifar, plain, wide, imagenet, keras)"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--no-cache", action="store_true", help="measure again, ignore the cached table")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("summary", help="print one model's layers, parameters, GMACs and features")
    p.add_argument("name", help="model name, see `resnetkit models`")
    p.add_argument("--input-size", nargs=3, type=int, metavar=("H", "W", "C"))
    p.add_argument("--num-classes", type=int)
    p.add_argument("--softmax", action="store_true", help="end with softmax instead of logits")
    p.add_argument("--no-top", action="store_true", help="leave out pooling and classifier")
    p.set_defaults(func=_cmd_summary)

    weights = sub.add_parser("weights", help="pretrained weights: list, fetch, import")
    wsub = weights.add_subparsers(dest="weights_command", required=True)
    p = wsub.add_parser("list", help="every registered set of weights with its preprocessing")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=_cmd_weights_list)
    p = wsub.add_parser("fetch", help="download (or find) a registered file and verify it")
    p.add_argument("name", help="registry name, see `resnetkit weights list`")
    p.add_argument("--no-top", action="store_true", help="the headless file (Keras weights)")
    p.set_defaults(func=_cmd_weights_fetch)
    p = wsub.add_parser(
        "import", help="convert a weights file into .keras/.weights.h5/.safetensors"
    )
    p.add_argument("source", help="weights file (.h5, .pth, .safetensors, .npz) or registry name")
    p.add_argument("--arch", required=True, help="zoo model name, e.g. resnet50")
    p.add_argument("--out", required=True, help="output: .keras, .weights.h5 or .safetensors")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-size", nargs=3, type=int, metavar=("H", "W", "C"))
    p.set_defaults(func=_cmd_weights_import)

    p = sub.add_parser(
        "train",
        help="train a model from a config (or resume a run)",
        description="Train per a YAML config (see configs/); flags and --set override it.",
    )
    _add_run_options(p)
    p.add_argument("--model", help="zoo model name")
    p.add_argument("--weights", help="registry name or weights file to start from")
    p.add_argument("--strategy", choices=("auto", "one", "mirrored", "multiworker"))
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "finetune",
        help="fine-tune pretrained weights on new data (or resume a run)",
        description="Start from pretrained weights, put a new head on, and train per "
        "--strategy; BatchNorm of frozen stages stays in inference mode.",
    )
    _add_run_options(p)
    p.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="registry name (resnet50.tv2_in1k), weights file (with --arch) or run directory",
    )
    p.add_argument("--arch", help="architecture of a weights file (zoo model name)")
    # Choices as in transfer/finetune.py (STRATEGIES, BN_POLICIES), which imports Keras.
    p.add_argument(
        "--strategy", choices=("linear", "full", "two-stage", "gradual"), help="default: two-stage"
    )
    p.add_argument(
        "--trainable-stages",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        metavar="STAGES",
        help="comma list of stages to train, e.g. stage3,stage4 (the head always trains)",
    )
    p.add_argument("--bn-policy", choices=("frozen", "train"), help="BatchNorm of unfrozen stages")
    p.add_argument("--lr-decay", type=float, help="rate factor per stage below the top one")
    p.add_argument("--head-lr-mult", type=float, help="head rate = --lr times this")
    p.add_argument("--head-epochs", type=int, help="head-only epochs of two-stage/gradual")
    p.add_argument("--patience", type=int, help="early stop on val accuracy, best restored")
    p.add_argument("--class-weight", choices=("auto",), help="balance classes in the loss")
    p.add_argument("--val-fraction", type=float, help="stratified validation split")
    p.add_argument(
        "--distribute", choices=("auto", "one", "mirrored", "multiworker"), help="tf.distribute"
    )
    p.set_defaults(func=_cmd_finetune)

    p = sub.add_parser(
        "evaluate",
        help="accuracy, per-class metrics, confusion matrix, calibration, mistakes",
        description="Evaluate a trained model on labelled data with the run's class map and "
        "preprocessing; writes metrics.json and charts.",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL", help="run directory or .keras file")
    p.add_argument("--data", required=True, help="data set name, image folder or .csv manifest")
    p.add_argument(
        "--split", choices=("test", "val", "train"), help="default: test, else val, else all"
    )
    p.add_argument("--tta", action="store_true", help="average with the mirror image")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", help="output folder (default: RUN_DIR/evaluation/DATA-SPLIT)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="top-k classes for image files, folders or globs")
    p.add_argument(
        "model",
        metavar="RUN_DIR|MODEL|EXPORT",
        help="run directory, .keras file, or an export of `resnetkit export` (its folder, "
        ".onnx, .tflite or SavedModel)",
    )
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--tta", action="store_true", help="average with the mirror image")
    p.add_argument("--output", help="also write the predictions to a .csv or .json file")
    p.add_argument(
        "--runtime",
        choices=_RUNTIMES,
        help="runtime of an exported artifact (default: the one its model_card.json names)",
    )
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "export",
        help="SavedModel, ONNX, LiteRT or .keras via Keras' exporters, parity-checked",
        description="Export a trained model with Keras' own exporters (BatchNorm folded into "
        "the convolutions), load the artifact in its own runtime and compare it with the Keras "
        "model on real validation images (max abs difference <= 1e-4; int8: top-1 agreement "
        ">= 99%%). Writes the artifact, labels.txt and model_card.json into --out; a failed "
        "check leaves nothing behind.",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL", help="run directory or .keras file")
    p.add_argument("--format", required=True, choices=("savedmodel", "onnx", "litert", "keras"))
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--include-preprocessing",
        action="store_true",
        help="the artifact takes uint8 images: resize/crop/normalize inside the graph "
        "(ONNX and LiteRT: normalize only, see model_card.json)",
    )
    p.add_argument("--quantize", choices=("int8",), help="LiteRT only: full-integer int8")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers as they are")
    p.add_argument("--data", help="data for the parity check (default: the run's own)")
    p.add_argument("--check-images", type=int, default=256, help="images in the parity check")
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.99,
        help="int8: least top-1 agreement with the float model (recorded in the card)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "serve",
        help="HTTP service: POST /predict, GET /health, GET /metadata (dynamic batching)",
        description="Serve a run or an exported artifact on HTTP (127.0.0.1 by default). "
        "POST /predict takes one image as the raw body or several as multipart/form-data and "
        "returns top-k JSON; concurrent requests share forward passes (dynamic batching).",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL|EXPORT", help="run, .keras file or export")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    p.add_argument("--runtime", choices=_RUNTIMES, help="runtime of an exported artifact")
    p.add_argument("--max-batch", type=int, default=32, help="images per forward pass")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="wait for a batch to fill")
    p.add_argument("--no-batching", action="store_true", help="one request per forward pass")
    p.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image (pixels)")
    p.add_argument("--max-images", type=int, default=64, help="images per request")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--top-k", type=int, default=5, help="default top-k (query: ?top_k=N)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("report", help="(re)write a run's self-contained report.html")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "explain",
        help="Grad-CAM heatmaps: where each image holds the evidence for a class",
        description="Overlay a Grad-CAM (or Grad-CAM++) heatmap of one feature map on each "
        "image as the network sees it (resized, center-cropped); writes one PNG per image "
        "and grid.png.",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL", help="run directory or .keras file")
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--layer", metavar="NAME", help="feature map: stem, stage1, ... (default: last stage)"
    )
    p.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="explain this class (default: each image's predicted class)",
    )
    p.add_argument("--method", choices=("gradcam", "gradcam++"), default="gradcam")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity, 0..1")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=_cmd_explain)

    analyze = sub.add_parser(
        "analyze", help="why residual connections work, measured: gradients, degradation"
    )
    asub = analyze.add_subparsers(dest="analyze_command", required=True)
    p = asub.add_parser(
        "gradients",
        help="per-layer gradient norms at initialization and after N training steps",
        description="Gradient norm of every convolution/dense kernel, input to output, for "
        "each model at initialization and after --steps SGD steps, on one log-scale chart "
        "(gradients.png) with the numbers in gradients.json.",
    )
    p.add_argument("--models", default="plain56,resnet56", help="comma-separated model names")
    p.add_argument("--data", default="fashion-mnist", help="data set name, folder or manifest")
    p.add_argument("--steps", type=int, default=100, help="training steps before the 2nd look")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="SGD rate for a batch of 128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.set_defaults(func=_cmd_analyze_gradients)
    p = asub.add_parser(
        "degradation",
        help="train plain and residual nets alike; training/test error against epochs",
        description="He et al. 2016 Figure 6 at a reduced budget: every model trains with "
        "one recipe (resnetkit.analyze.degradation_config); writes degradation.json and "
        "degradation.png and prints the final errors. The default budget takes about 30 "
        "minutes for the four default models on a 2-core CPU.",
    )
    p.add_argument(
        "--models", default="plain20,plain56,resnet20,resnet56", help="comma-separated names"
    )
    p.add_argument("--data", default="fashion-mnist", help="data set with a test split")
    # Literals, equal to resnetkit.analyze.degradation's defaults, so that --help stays fast
    # (test_analyze checks they agree).
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--train-subset", type=int, default=4000, help="training images (0: all of them)"
    )
    p.add_argument(
        "--test-subset", type=int, default=2000, help="test images for the per-epoch curve (0: all)"
    )
    p.add_argument("--lr", type=float, default=0.1, help="SGD rate for a batch of 128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--zero-init-residual",
        action="store_true",
        help="start residual branches at zero (last BN scale 0); default: He et al.'s init",
    )
    p.add_argument(
        "--runs-dir", metavar="DIR", help="keep the run directories here (default: deleted)"
    )
    p.set_defaults(func=_cmd_analyze_degradation)

    data = sub.add_parser("data", help="data sets: inspect, export")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("inspect", help="classes, counts, sizes, bad files, duplicates, leakage")
    p.add_argument("path", help="image folder, .csv manifest, or fashion-mnist/mnist/cifar10/…")
    p.add_argument("--strict", action="store_true", help="exit 1 if anything is wrong")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="decompression-bomb limit")
    p.set_defaults(func=_cmd_data_inspect)
    p = dsub.add_parser("export", help="write a standard data set as a PNG folder")
    p.add_argument("name", help="fashion-mnist, mnist, cifar10, cifar100 or digits")
    p.add_argument("out", help="new folder")
    p.set_defaults(func=_cmd_data_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DownloadUnavailable as e:  # no network: the message says where to put the file
        print(f"resnetkit {args.command}: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as e:
        print(f"resnetkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
