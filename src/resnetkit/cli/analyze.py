"""``resnetkit analyze gradients|degradation``: why residual connections work, measured."""

from __future__ import annotations

import argparse
import os

from resnetkit.analyze import defaults


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    d = defaults
    p.add_argument("--models", default=",".join(d.GRADIENT_MODELS), help="comma-separated names")
    p.add_argument("--data", default=d.DEFAULT_DATA, help="data set name, folder or manifest")
    p.add_argument(
        "--steps", type=int, default=d.GRADIENT_STEPS, help="training steps before the 2nd look"
    )
    p.add_argument("--batch-size", type=int, default=d.GRADIENT_BATCH_SIZE)
    p.add_argument("--lr", type=float, default=d.DEFAULT_LR, help="SGD rate for a batch of 128")
    p.add_argument("--seed", type=int, default=d.DEFAULT_SEED)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.set_defaults(func=run_gradients)
    _add_degradation_parser(asub)


def _add_degradation_parser(asub: argparse._SubParsersAction) -> None:
    p = asub.add_parser(
        "degradation",
        help="train plain and residual nets alike; training/test error against epochs",
        description="He et al. 2016 Figure 6 at a reduced budget: every model trains with "
        "one recipe (resnetkit.analyze.degradation_config); writes degradation.json and "
        "degradation.png and prints the final errors. The default budget takes about 30 "
        "minutes for the four default models on a 2-core CPU.",
    )
    p.add_argument(
        "--models", default=",".join(defaults.DEFAULT_MODELS), help="comma-separated names"
    )
    p.add_argument("--data", default=defaults.DEFAULT_DATA, help="data set with a test split")
    p.add_argument("--epochs", type=int, default=defaults.DEFAULT_EPOCHS)
    p.add_argument("--batch-size", type=int, default=defaults.DEFAULT_BATCH_SIZE)
    p.add_argument(
        "--train-subset",
        type=int,
        default=defaults.DEFAULT_TRAIN_SUBSET,
        help="training images (0: all of them)",
    )
    p.add_argument(
        "--test-subset",
        type=int,
        default=defaults.DEFAULT_TEST_SUBSET,
        help="test images for the per-epoch curve (0: all)",
    )
    p.add_argument(
        "--lr", type=float, default=defaults.DEFAULT_LR, help="SGD rate for a batch of 128"
    )
    p.add_argument("--seed", type=int, default=defaults.DEFAULT_SEED)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--zero-init-residual",
        action="store_true",
        help="start residual branches at zero (last BN scale 0); default: He et al.'s init",
    )
    p.add_argument(
        "--runs-dir", metavar="DIR", help="keep the run directories here (default: deleted)"
    )
    p.set_defaults(func=run_degradation)


def _model_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def run_gradients(args: argparse.Namespace) -> int:
    from resnetkit.analyze import gradients

    result = gradients.run_gradients(
        _model_list(args.models),
        data=args.data,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out=args.out,
    )
    print(gradients.format_gradients(result))
    written = [
        os.path.join(args.out, name) for name in (gradients.GRADIENTS_JSON, gradients.GRADIENTS_PNG)
    ]
    print(f"\nwrote {', '.join(written)}")
    return 0


def run_degradation(args: argparse.Namespace) -> int:
    from resnetkit.analyze import degradation

    result = degradation.run_degradation(
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
        command=args.command_line,
    )
    print()
    print(degradation.format_degradation(result))
    written = [
        os.path.join(args.out, name)
        for name in (degradation.DEGRADATION_JSON, degradation.DEGRADATION_PNG)
    ]
    print(f"\nwrote {', '.join(written)}")
    return 0
