"""``resnetkit train`` and ``resnetkit finetune``: flags → config, the library runs it.

``train`` calls ``resnetkit.training.train``, ``finetune`` calls ``resnetkit.transfer.finetune``
(which checks that a source is given). ``--resume RUN`` works from either command: the run's
saved config says which of the two resumes it.
"""

from __future__ import annotations

import argparse
import sys
import typing

from resnetkit.recipes import recipe_names, recipe_path
from resnetkit.training.config import (
    BadImagePolicy,
    BnPolicy,
    ClassWeight,
    FinetuneStrategy,
    Precision,
    Strategy,
)
from resnetkit.training.rules import rules_text

TRAIN_FLAGS = {  # flag → config key; each is a shortcut for --set key=value
    "model": "model.name",
    "weights": "model.weights",
    "data": "data.source",
    "epochs": "schedule.epochs",
    "steps": "schedule.steps",
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
    "model": "model.name",
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a config (or resume a run)",
        description="Train per a YAML config (--config FILE, or --recipe NAME: see "
        "`resnetkit recipes`); flags and --set override it.",
        epilog=rules_text(),
    )
    _add_run_options(p)
    p.add_argument("--model", help="zoo model name")
    p.add_argument("--weights", help="registry name or weights file to start from")
    p.add_argument("--strategy", choices=typing.get_args(Strategy))
    p.set_defaults(func=run_train)
    _add_finetune_parser(sub)


def _add_finetune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune pretrained weights on new data (or resume a run)",
        description="Start from pretrained weights, put a new head on, and train per "
        "--strategy; BatchNorm of frozen stages stays in inference mode. The best "
        "validation epoch's weights are kept at the end when there is a validation split.",
        epilog=rules_text(),
    )
    _add_run_options(p)
    p.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="registry name (resnet50.tv2_in1k), weights file (with --arch) or run directory",
    )
    p.add_argument("--arch", help="architecture of a weights file (zoo model name)")
    p.add_argument(
        "--model",
        help="a segmentation model HEAD_BACKBONE (e.g. deeplabv3plus_resnet50) whose backbone "
        "the source's weights fill; default: a classifier of the source's architecture",
    )
    p.add_argument(
        "--strategy", choices=typing.get_args(FinetuneStrategy), help="default: two-stage"
    )
    p.add_argument(
        "--trainable-stages",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        metavar="STAGES",
        help="comma list of stages to train, e.g. stage3,stage4 (the head always trains)",
    )
    p.add_argument(
        "--bn-policy", choices=typing.get_args(BnPolicy), help="BatchNorm of unfrozen stages"
    )
    p.add_argument("--lr-decay", type=float, help="rate factor per stage below the top one")
    p.add_argument("--head-lr-mult", type=float, help="head rate = --lr times this")
    p.add_argument("--head-epochs", type=int, help="head-only epochs of two-stage/gradual")
    p.add_argument("--patience", type=int, help="early stop on val accuracy, best restored")
    p.add_argument(
        "--class-weight", choices=typing.get_args(ClassWeight), help="balance classes in the loss"
    )
    p.add_argument("--val-fraction", type=float, help="stratified validation split")
    p.add_argument("--distribute", choices=typing.get_args(Strategy), help="tf.distribute")
    p.set_defaults(func=run_finetune)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options that train and finetune share."""
    p.add_argument("--config", help="YAML config file, e.g. configs/fashion_mnist_fast.yaml")
    p.add_argument(
        "--recipe",
        metavar="NAME",
        help=f"a shipped recipe instead of --config: {', '.join(recipe_names())} "
        "(see `resnetkit recipes`)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    p.add_argument("--data", help="data set name, image folder or .csv manifest")
    p.add_argument("--epochs", type=int, help="default: from the step rule (below)")
    p.add_argument("--steps", type=int, help="length in optimizer steps instead of epochs")
    p.add_argument("--batch-size", type=int, help="default: 128, at most 1/4 of the split")
    p.add_argument("--lr", type=float, help="peak learning rate for batch 128 (scaled linearly)")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=typing.get_args(Precision))
    p.add_argument("--on-bad-image", choices=typing.get_args(BadImagePolicy))
    p.add_argument("--deterministic", action="store_true", help="deterministic TensorFlow ops")
    p.add_argument("--run-dir", help="new run directory (default: runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")


def run_train(args: argparse.Namespace) -> int:
    from resnetkit.training.engine import train

    return _run(args, "train", TRAIN_FLAGS, start=train, preset=())


def run_finetune(args: argparse.Namespace) -> int:
    from resnetkit.transfer.finetune import PRESET, finetune

    return _run(args, "finetune", FINETUNE_FLAGS, start=finetune, preset=PRESET)


def _run(
    args: argparse.Namespace,
    command: str,
    flags: dict[str, str],
    start: typing.Callable[..., object],
    preset: typing.Sequence[str],
) -> int:
    """Flags → config overrides, then ``start(config, run_dir)`` or a resume; exit codes."""
    from resnetkit.training.callbacks import RunInterrupted, TrainingDiverged
    from resnetkit.training.checkpoint import CheckpointError
    from resnetkit.training.config import load_config

    given = {f: getattr(args, f) for f in flags if getattr(args, f) is not None}
    if "arch" in given and "model" in given:
        raise ValueError("give --arch (a weights file's architecture) or --model, not both")
    if args.resume and (args.config or args.recipe or args.set or given):
        raise ValueError("--resume takes the run's own saved config; give no other options")
    if args.recipe and args.config:
        raise ValueError("give --recipe NAME or --config FILE, not both")
    config_file = recipe_path(args.recipe) if args.recipe else args.config
    try:
        if args.resume:
            resume(args.resume)
        else:
            overrides = [f"{flags[f]}={_yaml_value(v)}" for f, v in given.items()]
            if args.deterministic:
                overrides.append("run.deterministic=true")
            config = load_config(config_file, [*overrides, *(args.set or [])], preset=list(preset))
            start(config, args.run_dir, resume=False)
    except RunInterrupted as e:
        where = args.resume or args.run_dir or "RUN_DIR"
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


def resume(run_dir: str) -> dict:
    """Resume the run in ``run_dir`` the way it began: a saved config with a
    ``finetune.source`` resumes as fine-tuning, any other as training."""
    from resnetkit.rundir import RunDir
    from resnetkit.training.config import load_config

    config = load_config(RunDir(run_dir).require_run().config)
    if config.finetune.source:
        from resnetkit.transfer.finetune import finetune

        return finetune(None, run_dir, resume=True)
    from resnetkit.training.engine import train

    return train(None, run_dir, resume=True)


def _yaml_value(value: object) -> str:
    """A flag's value as the YAML text of an override (comma lists become lists)."""
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return str(value)
