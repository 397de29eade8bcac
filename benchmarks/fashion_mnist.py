"""Fashion-MNIST training benchmark: test accuracy and wall time of a recipe, several seeds.

    .venv/bin/python benchmarks/fashion_mnist.py --config configs/fashion_mnist_fast.yaml \
        --seeds 0 1 2 --budget-minutes 10

Each seed is one ``resnetkit train`` process, timed from its start (imports, data, model
building and the final test evaluation included) to its exit. Runs are sequential: the
machine's cores are the resource measured. Results go to
``benchmarks/results/fashion_mnist-<config name>-<isa>.json`` with hardware, versions, every
run and the median.

Run directories live under ``--work-dir`` (default ``runs/bench-<config name>-<isa>/``), so
a seed whose process died (a two-hour recipe outlives many a session) is resumed by running
the same command again: ``resnetkit train --resume`` continues from its last checkpoint, and
the seed's wall time is the sum of its segments, each counted from its start to its last
checkpoint (work after that checkpoint was lost and is redone) and the final one to its
exit. A resumed segment pays imports and data loading again, so the sum is an upper bound on
an uninterrupted run's time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from common import hardware, isa_tag, versions

ROOT = Path(__file__).resolve().parent.parent


def _segment_log(run_dir: Path) -> Path:
    """Beside the run directory, not in it: a new run's directory must be empty."""
    return run_dir.with_name(f"{run_dir.name}-segments.json")


def _earlier_segments(run_dir: Path) -> list[dict]:
    """Segments of a seed's earlier, interrupted processes, each closed at its last checkpoint."""
    log = _segment_log(run_dir)
    segments = json.loads(log.read_text()) if log.is_file() else []
    states = (run_dir / "checkpoints").glob("*/state.json")
    if segments and "ended" not in segments[-1]:
        last = max((s.stat().st_mtime for s in states), default=segments[-1]["started"])
        segments[-1]["ended"] = max(last, segments[-1]["started"])
        segments[-1]["closed_at"] = "last checkpoint (process died)"
    return segments


def one_run(config: Path, seed: int, run_dir: Path) -> dict:
    if (run_dir / "summary.json").is_file():  # a finished seed is measured again, not reused
        raise SystemExit(f"{run_dir} holds a finished run: remove it or choose another --work-dir")
    segments = _earlier_segments(run_dir) if run_dir.is_dir() else []
    resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
    if run_dir.is_dir() and not resume:
        raise SystemExit(f"{run_dir} holds no checkpoint to resume: remove it to start seed {seed}")
    if resume:
        command = [sys.executable, "-m", "resnetkit.cli", "train", "--resume", str(run_dir)]
        print(f"seed {seed}: resuming {run_dir}", flush=True)
    else:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "resnetkit.cli", "train", "--config", str(config)]
        command += ["--seed", str(seed), "--run-dir", str(run_dir)]
    log = _segment_log(run_dir)
    segments.append({"started": time.time(), "resumed": resume})
    log.write_text(json.dumps(segments, indent=1))
    result = subprocess.run(command, capture_output=True, text=True)
    segments[-1]["ended"] = time.time()
    segments[-1]["closed_at"] = "process exit"
    log.write_text(json.dumps(segments, indent=1))
    if result.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{result.stderr[-4000:]}")
    wall = sum(s["ended"] - s["started"] for s in segments)
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
        "segments": [
            {"seconds": s["ended"] - s["started"], "closed_at": s["closed_at"]} for s in segments
        ],
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
        "--work-dir",
        type=Path,
        default=None,
        help="where the seeds' run directories are kept; a seed found there is resumed",
    )
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
    work = args.work_dir or ROOT / "runs" / f"bench-{args.config.stem}-{isa_tag()}"
    for seed in args.seeds:
        run = one_run(args.config, seed, work / f"seed{seed}")
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
