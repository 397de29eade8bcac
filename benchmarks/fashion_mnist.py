"""Fashion-MNIST training benchmark: test accuracy and wall time of a recipe, several seeds.

    .venv/bin/python benchmarks/fashion_mnist.py --config configs/fashion_mnist_fast.yaml \
        --seeds 0 1 2 --budget-minutes 10

Each seed is one ``resnetkit train`` process, timed from its start (imports, data, model
building and the final test evaluation included) to its exit. Runs are sequential: the
machine's cores are the resource measured. Results go to
``benchmarks/results/fashion_mnist-<config name>.json`` with hardware, versions, every run
and the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import hardware, isa_tag, versions

ROOT = Path(__file__).resolve().parent.parent


def one_run(config: Path, seed: int, run_dir: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "resnetkit.cli",
        "train",
        "--config",
        str(config),
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{result.stderr[-4000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    return {
        "seed": seed,
        "test_accuracy": summary["test_accuracy"],
        "test_accuracy_no_tta": summary.get("test_accuracy_no_tta"),
        "epochs": len(history),
        "precision": resolved["run"]["precision"],
        "wall_seconds": wall,
        "train_seconds": summary["train_seconds"],
        "images_per_second": summary["images_per_second"],
        "curve": [
            {k: r[k] for k in ("epoch", "loss", "accuracy", "lr") if k in r} for r in history
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/fashion_mnist_fast.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--append",
        action="store_true",
        help="add these seeds to the runs already in --out (a long recipe, one seed per day)",
    )
    args = parser.parse_args()
    args.config = args.config.resolve()
    if not args.config.is_file():
        parser.error(f"--config {args.config}: no such file")
    # Results depend on the CPU's vector instructions (bfloat16 is native or emulated).
    name = f"fashion_mnist-{args.config.stem}-{isa_tag()}.json"
    out = args.out or ROOT / "benchmarks/results" / name
    runs = []
    if args.append and out.is_file():
        runs = json.loads(out.read_text())["runs"]
        done = {r["seed"] for r in runs}
        if done & set(args.seeds):
            parser.error(f"{out} already holds seed(s) {sorted(done & set(args.seeds))}")
    with tempfile.TemporaryDirectory(prefix="resnetkit-bench-") as tmp:
        for seed in args.seeds:
            run = one_run(args.config, seed, Path(tmp) / f"seed{seed}")
            runs.append(run)
            print(
                f"seed {seed}: test accuracy {run['test_accuracy']:.4f} in "
                f"{run['wall_seconds'] / 60:.2f} min",
                flush=True,
            )
    accuracy = statistics.median(r["test_accuracy"] for r in runs)
    wall = statistics.median(r["wall_seconds"] for r in runs)
    report = {
        "benchmark": "fashion-mnist training",
        "config": str(args.config.relative_to(ROOT))
        if args.config.is_relative_to(ROOT)
        else str(args.config),
        "config_text": args.config.read_text(),
        "median_test_accuracy": accuracy,
        "median_wall_seconds": wall,
        "target_accuracy": args.target,
        "budget_seconds": args.budget_minutes * 60,
        "goal_met": accuracy >= args.target
        and max(r["wall_seconds"] for r in runs) <= args.budget_minutes * 60,
        "seeds_measured": len(runs),
        "runs": runs,
        "hardware": hardware(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(
        f"median test accuracy {accuracy:.4f}, median wall {wall / 60:.2f} min "
        f"(goal {args.target:.1%} within {args.budget_minutes:g} min: "
        f"{'met' if report['goal_met'] else 'NOT met'}); wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
