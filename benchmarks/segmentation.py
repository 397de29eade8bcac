"""Segmentation benchmark on scenes built from real images (no segmentation set can be
downloaded here): `resnetkit data export fashion-mnist-scenes`, 64×64, 11 classes.

Command (the full grid is about an hour on a 2-core CPU; --quick is a first look):

    .venv/bin/python benchmarks/segmentation.py [--quick]

1. Output stride: U-Net and DeepLabV3+ on ResNet-18 and ResNet-34 (ImageNet layouts, whose
   deepest stride is 32); DeepLabV3+ at output stride 8, 16 and 32 (U-Net joins every
   stride, 32 only). Validation mIoU and training images/s, the same steps for every model.
2. Fine-tuning against scratch: `resnetkit finetune --from SOURCE` (a Fashion-MNIST
   classifier of the same backbone, trained here first) against `resnetkit train`, at 50,
   200 and 1,000 training scenes, 3 seeds, median; 200 validation scenes throughout.

Every run is the plain command plus the data, seed, steps, batch 16 and run.report=false. Results
go to benchmarks/results/segmentation.json, rewritten after every run.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

from common import exported_scenes, finetune_against_scratch, hardware, versions

RESULTS = Path(__file__).parent / "results" / "segmentation.json"
BATCH = 16


def scenes(root: Path, train: int, val: int, seed: int = 0) -> Path:
    from resnetkit.data.scenes import export_scenes

    return exported_scenes(export_scenes, root / f"scenes-{train}-{seed}", train, val, seed)


def run(items: list[str], run_dir: Path, finetune_from: str | None = None) -> dict:
    """One silent run: its best and final validation mIoU, training images/s, wall seconds."""
    from resnetkit.training.config import load_config
    from resnetkit.training.engine import train
    from resnetkit.transfer import finetune, finetune_config

    done = run_dir / "summary.json"
    with redirect_stdout(io.StringIO()):
        if done.exists():  # a finished run of an earlier, interrupted benchmark
            summary = json.loads(done.read_text())
        elif finetune_from:
            summary = finetune(finetune_config(finetune_from, overrides=items), run_dir)
        else:
            summary = train(load_config(None, items), run_dir)
    history = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "val_miou": max(r["val_miou"] for r in history),
        "final_val_miou": history[-1]["val_miou"],
        "train_images_per_s": round(summary["images_per_second"], 1),
        "seconds": round(summary["session_wall_seconds"], 1),
        "epochs": summary["epochs"],
    }


def source_run(backbone: str, run_dir: Path, epochs: int) -> Path:
    """The Fashion-MNIST classifier whose backbone fine-tuning starts from (trained once)."""
    from resnetkit.training.config import load_config
    from resnetkit.training.engine import train

    if not (run_dir / "summary.json").exists():
        items = [f"model.name={backbone}", "data.source=fashion-mnist", f"schedule.epochs={epochs}",
                 "run.report=false"]  # fmt: skip
        with redirect_stdout(io.StringIO()):
            train(load_config(None, items), run_dir)
    return run_dir


def write(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one backbone, one seed, fewer steps")
    p.add_argument("--work", default="/tmp/resnetkit-bench-segmentation", help="scratch folder")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default 500; quick 120)")
    args = p.parse_args()
    work = Path(args.work)
    steps = args.steps or (120 if args.quick else 500)
    backbones = ["resnet18"] if args.quick else ["resnet18", "resnet34"]
    seeds = [0] if args.quick else [0, 1, 2]
    counts = [50, 200] if args.quick else [50, 200, 1000]
    results = {"benchmark": "segmentation",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "hardware": hardware(), "versions": versions(),
               "command": " ".join(sys.argv), "steps": steps, "batch": BATCH, "strides": [],
               "transfer": []}  # fmt: skip
    common = [f"schedule.steps={steps}", f"data.batch_size={BATCH}", "run.report=false"]

    data = scenes(work, 1000 if not args.quick else 200, 200)
    for backbone in backbones:
        for head, stride in [("unet", 32), ("deeplabv3plus", 8), ("deeplabv3plus", 16),
                             ("deeplabv3plus", 32)]:  # fmt: skip
            name = f"{head}_{backbone}"
            items = [f"model.name={name}", f"data.source={data}", f"model.output_stride={stride}",
                     *common]  # fmt: skip
            row = {"model": name, "output_stride": stride, "train_scenes": data.name,
                   **run(items, work / f"os-{name}-{stride}")}  # fmt: skip
            results["strides"].append(row)
            print(json.dumps(row), flush=True)
            write(results)

    backbone = "resnet8_fast"
    epochs = 2 if args.quick else 5
    source = source_run(backbone, work / f"source-{backbone}-{epochs}", epochs)
    finetune_against_scratch(
        results, model=f"unet_{backbone}", counts=counts, seeds=seeds,
        data_for=lambda count, seed: scenes(work, count, 200, seed), common=common,
        source=source, run=run, work=work, metric="val_miou", write=write,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
