"""Transfer benchmark: does a pretrained ResNet beat training from scratch at few labels?

Command (about 20 minutes on a 2-core CPU):

    make bench-transfer            # or: .venv/bin/python benchmarks/transfer.py

Source task: Fashion-MNIST classes 0-4 (T-shirt, trouser, pullover, dress, coat), all
30,000 training images; ResNet-20 is pretrained on it once (seed 0). Target task: classes
5-9 (sandal, shirt, sneaker, bag, ankle boot), with 10, 50 and 250 labelled training images
per class drawn per seed, and tested on all 5,000 test images of those classes. Both tasks are
written as PNG folders, so the runs read them through the image-folder path.

For every label count and seed (the same draw for every strategy): from scratch, linear
probe, full fine-tune and two-stage fine-tune, tuned by hand (batch, epochs, learning rate and
augmentation below). Then the "defaults" column, in the same run: what a user gets with no
recipe and no flags, `resnetkit train --model resnet20 --data FOLDER` and
`resnetkit finetune --from SOURCE_RUN --data FOLDER`, where the source run is itself a plain
`resnetkit train --model resnet20 --data SOURCE --epochs 10`. Only the data, the source, the
seed and `run.report=false` are set for those. Results (accuracies, medians, wall times) go to
benchmarks/results/transfer.json, rewritten after every run.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
from common import hardware, versions
from PIL import Image

SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
STRATEGIES = ("scratch", "linear", "full", "two-stage")
DEFAULTS = ("defaults scratch", "defaults two-stage")
COMMON = ["augment.crop=pad", "augment.pad=2", "data.val_fraction=0", "run.precision=float32"]


def write_folder(root: Path, arrays: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    for i, (image, label) in enumerate(zip(arrays, labels, strict=True)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"{i:05d}.png")


def make_data(root: Path, label_counts: list[int], seeds: list[int]) -> dict:
    """The source folder, and one target folder per (label count, seed)."""
    from resnetkit.data import load_data
    from resnetkit.data.inspect import safe_folder_name

    fm = load_data("fashion-mnist", val_fraction=0)
    names = [safe_folder_name(n) for n in fm.class_names]
    train, test = fm.splits["train"], fm.splits["test"]
    source = root / "source"
    if not (source / ".complete").exists():
        for split, data in (("train", train), ("test", test)):
            keep = np.isin(data.labels, SOURCE_CLASSES)
            write_folder(source / split, data.arrays[keep], data.labels[keep], names)
        (source / ".complete").touch()
    shared_test = root / "target-test"
    if not (shared_test / ".complete").exists():
        keep = np.isin(test.labels, TARGET_CLASSES)
        write_folder(shared_test, test.arrays[keep], test.labels[keep], names)
        (shared_test / ".complete").touch()
    targets = {}
    for count in label_counts:
        for seed in seeds:
            folder = root / f"target-{count}-seed{seed}"
            if not (folder / ".complete").exists():
                rng = np.random.default_rng(1000 + seed)
                picked = np.concatenate(
                    [
                        rng.choice(np.flatnonzero(train.labels == c), count, replace=False)
                        for c in TARGET_CLASSES
                    ]
                )
                write_folder(folder / "train", train.arrays[picked], train.labels[picked], names)
                (folder / "test").symlink_to(shared_test, target_is_directory=True)
                (folder / ".complete").touch()
            targets[(count, seed)] = folder
    return {"source": source, "targets": targets}


def run(config_items: list[str], run_dir: Path, finetune: bool) -> dict:
    """One training or fine-tuning run, silent; its test accuracy and wall seconds."""
    from resnetkit.training.config import load_config
    from resnetkit.training.engine import train
    from resnetkit.transfer import finetune as finetune_run
    from resnetkit.transfer import finetune_config

    started = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        if finetune:
            summary = finetune_run(finetune_config(overrides=config_items), run_dir)
        else:
            summary = train(load_config(None, config_items), run_dir)
    return {
        "test_accuracy": summary["test_accuracy"],
        "seconds": time.perf_counter() - started,
        "decisions": summary.get("decisions", []),
    }


def epochs_for(count: int) -> int:
    """About 200-400 steps whatever the label count."""
    return {10: 40, 50: 30, 250: 20}.get(count, 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 250])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--default-pretrain-epochs", type=int, default=10)
    parser.add_argument("--work", type=Path, default=None, help="data and run folders")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "transfer.json"
    )
    args = parser.parse_args()

    from resnetkit.cache import cache_dir

    work = args.work or cache_dir("bench", "transfer")
    data = make_data(work / "data", args.labels, args.seeds)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = work / f"runs-{stamp}"

    pre_dir = runs / "pretrain"
    pretrain = run(
        [
            "model.name=resnet20",
            f"data.source={data['source']}",
            "model.input_size=[28, 28, 1]",
            "data.batch_size=256",
            "optim.lr=0.15",
            "optim.weight_decay=0.005",
            "schedule.name=onecycle",
            f"schedule.epochs={args.pretrain_epochs}",
            *COMMON,
        ],
        pre_dir,
        finetune=False,
    )
    print(f"pretrained on classes 0-4: test accuracy {pretrain['test_accuracy']:.4f}", flush=True)
    default_pre_dir = runs / "pretrain-defaults"
    default_pretrain = run(
        [
            "model.name=resnet20",
            f"data.source={data['source']}",
            f"schedule.epochs={args.default_pretrain_epochs}",
            "run.report=false",
        ],
        default_pre_dir,
        finetune=False,
    )
    print(
        f"pretrained with the defaults: test accuracy {default_pretrain['test_accuracy']:.4f}",
        flush=True,
    )

    results: dict = {}
    report = {
        "benchmark": "transfer: Fashion-MNIST classes 0-4 → classes 5-9 at few labels",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": "resnet20, 28×28 grey",
        "pretrain": {"epochs": args.pretrain_epochs, **pretrain},
        "pretrain_defaults": {"epochs": args.default_pretrain_epochs, **default_pretrain},
        "epochs": {str(c): epochs_for(c) for c in args.labels},
        "seeds": args.seeds,
        "median_test_accuracy": {},
        "runs": results,
        "hardware": hardware(),
        "versions": versions(),
    }

    def record(count: int, strategy: str, seed: int, result: dict) -> None:
        results.setdefault(str(count), {}).setdefault(strategy, []).append({"seed": seed, **result})
        report["median_test_accuracy"] = {
            c: {s: statistics.median(r["test_accuracy"] for r in rows) for s, rows in by_s.items()}
            for c, by_s in results.items()
        }
        report["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(
            f"{count:4d} labels/class  seed {seed}  {strategy:18s} "
            f"{result['test_accuracy']:.4f}  {result['seconds']:.0f} s",
            flush=True,
        )

    for count in args.labels:
        batch = min(64, 5 * count // 2)
        for seed in args.seeds:
            folder = data["targets"][(count, seed)]
            base = [
                f"data.source={folder}",
                f"data.batch_size={batch}",
                f"schedule.epochs={epochs_for(count)}",
                f"run.seed={seed}",
                *COMMON,
            ]
            for strategy in STRATEGIES:
                out = runs / f"{strategy}-{count}-seed{seed}"
                if strategy == "scratch":
                    items = [*base, "model.name=resnet20", "model.input_size=[28, 28, 1]"]
                    result = run([*items, "optim.lr=0.1"], out, finetune=False)
                else:
                    items = [*base, f"finetune.source={pre_dir}", f"finetune.strategy={strategy}"]
                    result = run(items, out, finetune=True)
                record(count, strategy, seed, result)
            plain = [f"data.source={folder}", f"run.seed={seed}", "run.report=false"]
            for strategy in DEFAULTS:
                out = runs / f"{strategy.replace(' ', '-')}-{count}-seed{seed}"
                if strategy == "defaults scratch":
                    result = run([*plain, "model.name=resnet20"], out, finetune=False)
                else:
                    result = run([*plain, f"finetune.source={default_pre_dir}"], out, finetune=True)
                record(count, strategy, seed, result)

    print(json.dumps(report["median_test_accuracy"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
