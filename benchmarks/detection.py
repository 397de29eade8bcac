"""Detection benchmark on scenes built from real images (no detection set can be downloaded
here): `resnetkit data export fashion-mnist-boxes`, 128×128, 10 classes, items at 14–112 px.

Command (the full grid is about an hour on a 2-core CPU; --quick is a first look):

    .venv/bin/python benchmarks/detection.py [--quick]

1. The set: the anchor coverage of its training boxes, for the anchors a run chooses and for
   torchvision's (32 … 512 px), as `resnetkit data inspect` reports it.
2. Backbones: RetinaNet on two backbones, the same steps for each; COCO mAP and mAP@0.5 of
   the validation scenes by pycocotools, training images/s.
3. Fine-tuning against scratch: `resnetkit finetune --from SOURCE` (a Fashion-MNIST
   classifier of the same backbone, trained here first) against `resnetkit train`, at two
   numbers of training scenes, 3 seeds, median; 200 validation scenes throughout.

Every run is the plain command plus the data, seed, steps, batch and run.report=false.
Results go to benchmarks/results/detection.json, rewritten after every run.
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
from segmentation import source_run

RESULTS = Path(__file__).parent / "results" / "detection.json"
BATCH = 16


def box_scenes(root: Path, train: int, val: int, seed: int = 0) -> Path:
    from resnetkit.data.scenes import export_box_scenes

    return exported_scenes(export_box_scenes, root / f"boxes-{train}-{seed}", train, val, seed)


def anchor_coverage(data: Path, model: str) -> dict:
    from resnetkit.data.boxes import from_box_folder
    from resnetkit.tasks.detect.inspect import inspect_boxes

    report = inspect_boxes(from_box_folder(data, val_fraction=0), model)
    chosen, tv = report.chosen, report.torchvision
    return {"model": model, "canvas": report.canvas, "boxes": chosen.boxes,
            "chosen_smallest_anchors": report.levels, "chosen": round(chosen.covered, 4),
            "torchvision": round(tv.covered, 4),
            "chosen_per_class": {k: round(v, 4) for k, v in chosen.per_class.items()},
            "torchvision_per_class": {k: round(v, 4) for k, v in tv.per_class.items()}}  # fmt: skip


def run(items: list[str], run_dir: Path, finetune_from: str | None = None) -> dict:
    """One silent run: the validation COCO mAP and mAP@0.5 of its best checkpoint (by
    pycocotools, after training), training images/s, wall seconds."""
    from resnetkit.evaluate.detection import evaluate_detection
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
        data = next(i.partition("=")[2] for i in items if i.startswith("data.source="))
        scores, _ = evaluate_detection(run_dir, data, split="val")
    return {
        "val_map": round(scores["map"], 4),
        "val_map_50": round(scores["map_50"], 4),
        "train_images_per_s": round(summary["images_per_second"], 1),
        "seconds": round(summary["session_wall_seconds"], 1),
        "epochs": summary["epochs"],
    }


def write(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one seed, fewer steps")
    p.add_argument("--work", default="/tmp/resnetkit-bench-detection", help="scratch folder")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default 400; quick 100)")
    p.add_argument("--backbones", default="resnet8_fast,resnet18")
    p.add_argument("--counts", default="200,1000", help="training scenes for fine-tuning")
    args = p.parse_args()
    work = Path(args.work)
    steps = args.steps or (100 if args.quick else 400)
    seeds = [0] if args.quick else [0, 1, 2]
    counts = [int(c) for c in args.counts.split(",")]
    results = {"benchmark": "detection",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "hardware": hardware(), "versions": versions(),
               "command": " ".join(sys.argv), "steps": steps, "batch": BATCH, "backbones": [],
               "transfer": []}  # fmt: skip
    common = [f"schedule.steps={steps}", f"data.batch_size={BATCH}", "run.report=false"]

    data = box_scenes(work, max(counts), 200)
    backbones = args.backbones.split(",")
    results["coverage"] = anchor_coverage(data, f"retinanet_{backbones[0]}_fpn")
    write(results)
    for backbone in backbones:
        name = f"retinanet_{backbone}_fpn"
        items = [f"model.name={name}", f"data.source={data}", *common]
        row = {"model": name, "train_scenes": max(counts), **run(items, work / f"bb-{name}")}
        results["backbones"].append(row)
        print(json.dumps(row), flush=True)
        write(results)

    backbone = backbones[0]
    epochs = 2 if args.quick else 5
    source = source_run(backbone, work / f"source-{backbone}-{epochs}", epochs)
    finetune_against_scratch(
        results, model=f"retinanet_{backbone}_fpn", counts=counts, seeds=seeds,
        data_for=lambda count, seed: box_scenes(work, count, 200, seed), common=common,
        source=source, run=run, work=work, metric="val_map", write=write,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
