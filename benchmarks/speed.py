"""Speed benchmark: resnetkit against keras.applications and PyTorch eager, side by side.

Command (installs PyTorch, torchvision and the export runtimes in .venv-interop on first use):

    make bench-speed            # or: .venv-interop/bin/python benchmarks/speed.py

Every contender runs the same architecture, batch, input size and precision (float32) on
synthetic data, in its own fresh process (so that its peak memory is its own); warm-up
steps are excluded and the median of several timed repeats is reported. One command runs
them all, writes benchmarks/results/speed-<isa>.json and regenerates the speed table of
docs/speed.md (benchmarks/tables.py).

- Training step (forward, cross-entropy, backward, SGD with momentum): resnet20 @32×32
  batch 128, resnet50 @224×224 batch 32 and 16. resnetkit (Keras 3, TensorFlow, compiled
  as ``resnetkit train`` compiles), keras.applications.ResNet50, PyTorch eager
  (torchvision's resnet50; a hand-written CIFAR ResNet-20 equal to resnetkit's) in
  contiguous and channels_last memory formats.
- Inference, resnet50 @224: batch-1 latency and batch-32 throughput. resnetkit through
  Keras ``predict_on_batch``, a compiled call of the BatchNorm-folded model, and its
  exported ONNX on onnxruntime; PyTorch eager in both memory formats.
- Achieved training GFLOP/s (6 × forward MACs per image) against this machine's fp32
  matmul peak, measured in the same run (TensorFlow and PyTorch, the better figure).
- Peak resident memory of the resnet50 batch-32 training processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import hardware, versions

ROOT = Path(__file__).resolve().parent.parent

# (task, model, input size, batch) for the training contenders.
TRAIN_TASKS = (
    ("train", "resnet20", 32, 128),
    ("train", "resnet50", 224, 32),
    ("train", "resnet50", 224, 16),
)
TRAINERS = {
    "resnet20": ("resnetkit", "pytorch", "pytorch-channels-last"),
    "resnet50": (
        "resnetkit",
        "resnetkit-keras-layout",
        "keras-applications",
        "pytorch",
        "pytorch-channels-last",
    ),
}
INFERENCE = (
    "resnetkit-predict",
    "resnetkit-folded",
    "resnetkit-onnx",
    "pytorch",
    "pytorch-channels-last",
)


# --------------------------------------------------------------------------- timing


def median_rate(step, images: int, *, warmup: int, repeats: int, min_seconds: float) -> dict:
    """Images/second of ``step`` (which must return only when its work is done).

    ``warmup`` untimed calls, then ``repeats`` timed repeats of as many calls as fill
    ``min_seconds``; the median repeat is the figure.
    """
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    step()
    once = time.perf_counter() - start
    calls = max(1, round(min_seconds / max(once, 1e-9)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        rates.append(images * calls / (time.perf_counter() - start))
    return {
        "images_per_second": statistics.median(rates),
        "repeats": [round(r, 3) for r in rates],
        "calls_per_repeat": calls,
    }


def rss() -> dict:
    """Current and peak resident memory of this process, in MiB."""
    now = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_mib": round(now, 1), "peak_rss_mib": round(peak, 1)}


# --------------------------------------------------------------------------- Keras side


def keras_model(contender: str, name: str, size: int):
    import keras

    from resnetkit.models import create_model

    if contender == "keras-applications":
        return keras.applications.ResNet50(
            weights=None, input_shape=(size, size, 3), classes=1000, classifier_activation=None
        )
    classes = 10 if name == "resnet20" else 1000
    if contender == "resnetkit-keras-layout":  # keras.applications' layout, built by resnetkit
        name += "_keras"
    return create_model(name, input_shape=(size, size, 3), num_classes=classes)


def train_keras(contender: str, name: str, size: int, batch: int, opts) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    model = keras_model(contender, name, size)
    classes = model.output_shape[-1]
    # As `resnetkit train` compiles (jit_compile off: XLA measured slower here on CPU).
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=opts.jit,
    )
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, size, size, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, classes, batch))
    before = rss()
    result = median_rate(lambda: model.train_on_batch(x, y), batch, **timing(opts, size))
    result.update(memory_before_training=before, **rss(), macs=count(model))
    return result


def count(model) -> int:
    from resnetkit.models import count_macs

    return count_macs(model).macs


def infer_keras(contender: str, opts) -> dict:
    import numpy as np
    import tensorflow as tf

    from resnetkit.export.fold import inference_model

    model = keras_model("resnetkit", "resnet50", 224)
    if contender == "resnetkit-predict":
        run = model.predict_on_batch
    elif contender == "resnetkit-folded":
        folded, _ = inference_model(model)
        forward = tf.function(lambda x: folded(x, training=False), reduce_retracing=True)

        def run(x):
            return forward(x).numpy()
    else:  # resnetkit-onnx
        import onnxruntime as ort

        folded, _ = inference_model(model)
        folded(np.zeros((1, 224, 224, 3), np.float32))  # Keras' ONNX exporter wants a called model
        path = Path(tempfile.mkdtemp()) / "model.onnx"
        folded.export(str(path), format="onnx", verbose=False)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name

        def run(x):
            return session.run(None, {input_name: x})[0]

    return infer_common(
        run,
        lambda b: np.random.default_rng(0).standard_normal((b, 224, 224, 3), dtype=np.float32),
        opts,
    )


def infer_common(run, make_input, opts) -> dict:
    out = {}
    for batch in (1, 32):
        x = make_input(batch)
        rate = median_rate(lambda x=x: run(x), batch, **timing(opts, 224, inference=True))
        out[f"batch{batch}"] = rate
    out["batch1"]["latency_ms"] = 1000.0 / out["batch1"]["images_per_second"]
    out.update(rss())
    return out


def matmul_tf(n: int, opts) -> dict:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)[0, :1]))
    rate = median_rate(lambda: mm().numpy(), 1, warmup=2, repeats=opts.repeats, min_seconds=1.0)
    return {"gflops": rate["images_per_second"] * 2 * n**3 / 1e9, "n": n}


# --------------------------------------------------------------------------- PyTorch side


def torch_resnet20():
    """CIFAR ResNet-20 of He et al. 2016 §4.2, as resnetkit builds it: 3×3 convs,
    16-32-64 widths, three basic blocks per stage, identity shortcuts that subsample
    and zero-pad channels (option A), global average pooling, 10 classes."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.pad = stride, cout - cin

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            short = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
            if self.pad:  # zeros split between both ends of the channel axis
                half = self.pad // 2
                short = nn.functional.pad(short, (0, 0, 0, 0, half, self.pad - half))
            return torch.relu(out + short)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, width in enumerate((16, 32, 64)):
        for i in range(3):
            layers.append(Block(cin, width, 2 if stage and i == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def torch_model(name: str):
    if name == "resnet20":
        return torch_resnet20()
    import torchvision

    return torchvision.models.resnet50(weights=None)


def train_torch(contender: str, name: str, size: int, batch: int, opts) -> dict:
    import torch

    torch.manual_seed(0)
    fmt = torch.channels_last if contender.endswith("channels-last") else torch.contiguous_format
    model = torch_model(name).to(memory_format=fmt).train()
    classes = model(torch.zeros(1, 3, size, size)).shape[-1] if name == "resnet20" else 1000
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, classes, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    before = rss()
    result = median_rate(step, batch, **timing(opts, size))
    result.update(memory_before_training=before, **rss(), threads=torch.get_num_threads())
    return result


def infer_torch(contender: str, opts) -> dict:
    import torch

    fmt = torch.channels_last if contender.endswith("channels-last") else torch.contiguous_format
    model = torch_model("resnet50").to(memory_format=fmt).eval()

    def run(x):
        with torch.inference_mode():
            return model(x).numpy()

    def make_input(b):
        return torch.randn(b, 3, 224, 224).contiguous(memory_format=fmt)

    out = infer_common(run, make_input, opts)
    out["threads"] = torch.get_num_threads()
    return out


def matmul_torch(n: int, opts) -> dict:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    rate = median_rate(
        lambda: torch.mm(a, b)[0, 0].item(), 1, warmup=2, repeats=opts.repeats, min_seconds=1.0
    )
    return {
        "gflops": rate["images_per_second"] * 2 * n**3 / 1e9,
        "n": n,
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- driver


def timing(opts, size: int, inference: bool = False) -> dict:
    """Warm-up and repeats; big inputs get fewer calls per repeat (each takes seconds)."""
    return {
        "warmup": opts.warmup,
        "repeats": opts.repeats,
        "min_seconds": opts.min_seconds * (0.5 if inference else 1.0),
    }


def jobs() -> list[dict]:
    """Every measurement, one fresh process each."""
    out = [{"kind": "matmul", "contender": c, "n": 2048} for c in ("tensorflow", "pytorch")]
    for _, name, size, batch in TRAIN_TASKS:
        for c in TRAINERS[name]:
            out.append(
                {"kind": "train", "contender": c, "model": name, "size": size, "batch": batch}
            )
    out += [{"kind": "infer", "contender": c, "model": "resnet50", "size": 224} for c in INFERENCE]
    return out


def run_job(job: dict, opts) -> dict:
    c = job["contender"]
    if opts.tf_inter_op and not c.startswith("pytorch"):
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(opts.tf_inter_op)
    if job["kind"] == "matmul":
        return (matmul_tf if c == "tensorflow" else matmul_torch)(job["n"], opts)
    if job["kind"] == "train":
        fn = train_torch if c.startswith("pytorch") else train_keras
        return fn(c, job["model"], job["size"], job["batch"], opts)
    return (infer_torch if c.startswith("pytorch") else infer_keras)(c, opts)


def job_id(job: dict) -> str:
    parts = [job["kind"], job["contender"], job.get("model"), job.get("batch")]
    return "/".join(str(p) for p in parts if p is not None)


def spawn(job: dict, opts, script: str = __file__) -> dict:
    """Run one job of ``script`` (whose parser has ``add_process_arguments``) in a fresh
    interpreter; its result comes back through a file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, script, "--job", json.dumps(job), "--result", str(out)]
        cmd += ["--warmup", str(opts.warmup), "--repeats", str(opts.repeats)]
        cmd += ["--min-seconds", str(opts.min_seconds)] + (["--jit"] if opts.jit else [])
        cmd += ["--tf-inter-op", str(opts.tf_inter_op)]
        # Every contender gets the same TensorFlow kernels: resnetkit's default (oneDNN on),
        # which TensorFlow itself leaves off on CPUs without AVX512-VNNI/BF16 or AMX.
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS=opts.onednn)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
        result = json.loads(out.read_text())
        result["process_seconds"] = round(time.perf_counter() - start, 1)
        return result


def best(results: dict, prefix: str, contenders) -> tuple[str, float]:
    """The fastest of ``contenders`` for a result key ``prefix/<contender>/...``."""
    rates = {}
    for c in contenders:
        r = results.get(prefix.format(c=c), {})
        if "images_per_second" in r:
            rates[c] = r["images_per_second"]
    if not rates:
        return "none", None
    name = max(rates, key=rates.get)
    return name, rates[name]


def summarize(results: dict) -> dict:
    """The issue's goals as ratios; each with the figures it compares."""
    peak = max(results.get(f"matmul/{c}", {}).get("gflops", 0.0) for c in ("tensorflow", "pytorch"))
    s = {"matmul_peak_gflops": round(peak, 1), "training": {}, "inference": {}, "memory": {}}
    for _, name, size, batch in TRAIN_TASKS:
        key = f"{name}@{size}/b{batch}"
        ours = results.get(f"train/resnetkit/{name}/{batch}", {})
        rate = ours.get("images_per_second")
        torch_name, torch_rate = best(
            results, f"train/{{c}}/{name}/{batch}", ("pytorch", "pytorch-channels-last")
        )
        if rate is None or torch_rate is None:
            continue  # not measured in this run (--only)
        row = {
            "resnetkit": round(rate, 2),
            "pytorch_best": round(torch_rate, 2),
            "pytorch_best_is": torch_name,
            "ratio_vs_pytorch": round(rate / torch_rate, 3),
        }
        # Against keras.applications: the same layout (stride in the 1×1 convolution, conv
        # biases), which resnetkit builds as resnet50_keras.
        apps = results.get(f"train/keras-applications/{name}/{batch}", {})
        same = results.get(f"train/resnetkit-keras-layout/{name}/{batch}", {})
        if "images_per_second" in apps and "images_per_second" in same:
            row["resnetkit_keras_layout"] = round(same["images_per_second"], 2)
            row["keras_applications"] = round(apps["images_per_second"], 2)
            row["ratio_vs_keras_applications"] = round(
                same["images_per_second"] / apps["images_per_second"], 3
            )
        if "macs" in ours and peak:
            gflops = 6 * ours["macs"] * rate / 1e9
            row["training_gflops"] = round(gflops, 1)
            row["fraction_of_matmul_peak"] = round(gflops / peak, 3)
        s["training"][key] = row
    for batch in (1, 32):
        ours = {
            c: results.get(f"infer/{c}/resnet50", {})
            .get(f"batch{batch}", {})
            .get("images_per_second")
            for c in INFERENCE
        }
        mine = {c: v for c, v in ours.items() if c.startswith("resnetkit") and v}
        theirs = {c: v for c, v in ours.items() if c.startswith("pytorch") and v}
        if mine and theirs:
            a, b = max(mine, key=mine.get), max(theirs, key=theirs.get)
            s["inference"][f"resnet50@224/b{batch}"] = {
                "resnetkit_best_is": a,
                "resnetkit": round(mine[a], 2),
                "pytorch_best_is": b,
                "pytorch": round(theirs[b], 2),
                "ratio": round(mine[a] / theirs[b], 3),
                "latency_ms": {c: round(1000 / v, 1) for c, v in ours.items() if v}
                if batch == 1
                else None,
            }
    for c in TRAINERS["resnet50"]:
        r = results.get(f"train/{c}/resnet50/32", {})
        if "peak_rss_mib" in r:
            s["memory"][c] = r["peak_rss_mib"]
    return s


# The goals: (what, summary section, row, figure, target ratio).
GOALS = (
    ("training resnet20 vs PyTorch", "training", "resnet20@32/b128", "ratio_vs_pytorch", 1.25),
    ("training resnet50 b32 vs PyTorch", "training", "resnet50@224/b32", "ratio_vs_pytorch", 1.0),
    ("training resnet50 b16 vs PyTorch", "training", "resnet50@224/b16", "ratio_vs_pytorch", 1.0),
    (
        "training resnet50 b32 vs keras.applications",
        "training",
        "resnet50@224/b32",
        "ratio_vs_keras_applications",
        1.0,
    ),
    (
        "training resnet50 b16 vs keras.applications",
        "training",
        "resnet50@224/b16",
        "ratio_vs_keras_applications",
        1.0,
    ),
    ("inference batch 1 vs PyTorch", "inference", "resnet50@224/b1", "ratio", 1.2),
    ("inference batch 32 vs PyTorch", "inference", "resnet50@224/b32", "ratio", 1.2),
    (
        "resnet50 b32 training, fraction of matmul peak",
        "training",
        "resnet50@224/b32",
        "fraction_of_matmul_peak",
        0.6,
    ),
)


def goals(s: dict) -> list[dict]:
    rows = [(g, s[sec].get(row, {}).get(key), tgt) for g, sec, row, key, tgt in GOALS]
    mem = s["memory"]
    if "resnetkit" in mem and "pytorch" in mem:
        theirs = min(v for k, v in mem.items() if k.startswith("pytorch"))
        rows.append(
            ("peak training memory, PyTorch / resnetkit", round(theirs / mem["resnetkit"], 3), 1.0)
        )
    return [
        {"goal": g, "measured": m, "target": tgt, "met": m is not None and m >= tgt}
        for g, m, tgt in rows
    ]


def table(report: dict) -> str:
    """One speed report as markdown tables (benchmarks/tables.py puts it in docs/speed.md)."""
    s, hw = report["summary"], report["hardware"]
    lines = [
        f"Measured {report['date']} on {hw['cpu']} ({hw['cores']} cores, {hw['isa']}), float32, "
        f"by `make bench-speed`; fp32 matmul peak {s['matmul_peak_gflops']} GFLOP/s.",
        "",
        "| training (images/s) | resnetkit | keras.applications | PyTorch (best format) "
        "| vs PyTorch | % of matmul peak |",
        "|---|---|---|---|---|---|",
    ]
    for key, r in s["training"].items():
        apps = (
            f"{r['keras_applications']} (resnetkit same layout {r['resnetkit_keras_layout']})"
            if "keras_applications" in r
            else "–"
        )
        pct = (
            f"{100 * r['fraction_of_matmul_peak']:.0f}%" if "fraction_of_matmul_peak" in r else "–"
        )
        lines.append(
            f"| {key} | {r['resnetkit']} | {apps} | {r['pytorch_best']} ({r['pytorch_best_is']}) "
            f"| {r['ratio_vs_pytorch']}× | {pct} |"
        )
    lines += [
        "",
        "| inference resnet50@224 | resnetkit best | PyTorch best | ratio |",
        "|---|---|---|---|",
    ]
    for key, r in s["inference"].items():
        lines.append(
            f"| {key} | {r['resnetkit']} img/s ({r['resnetkit_best_is']}) "
            f"| {r['pytorch']} img/s ({r['pytorch_best_is']}) | {r['ratio']}× |"
        )
    if s["memory"]:
        mem = ", ".join(f"{k} {v:.0f} MiB" for k, v in s["memory"].items())
        lines += ["", f"Peak RSS, resnet50 batch-32 training process: {mem}."]
    lines += ["", "| goal | measured | target | met |", "|---|---|---|---|"]
    for g in report["goals"]:
        lines.append(
            f"| {g['goal']} | {g['measured']} | {g['target']} | {'yes' if g['met'] else 'no'} |"
        )
    return "\n".join(lines)


def add_process_arguments(parser: argparse.ArgumentParser) -> None:
    """The timing and TensorFlow settings every job process takes (``spawn`` passes them)."""
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=4.0, help="timed seconds per repeat")
    parser.add_argument("--jit", action="store_true", help="XLA for the Keras contenders")
    parser.add_argument(
        "--onednn",
        choices=("0", "1"),
        default="1",
        help="TF_ENABLE_ONEDNN_OPTS for every TensorFlow contender (1: resnetkit's default)",
    )
    parser.add_argument(
        "--tf-inter-op", type=int, default=0, help="TensorFlow inter-op threads (0: its default)"
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)  # child process
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_process_arguments(parser)
    parser.add_argument("--only", default="", help="comma-separated substrings of job ids to run")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--update", action="store_true", help="merge into the existing JSON (with --only)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate the docs' tables")
    opts = parser.parse_args()
    if opts.job:
        opts.result.write_text(json.dumps(run_job(json.loads(opts.job), opts)))
        return 0

    from common import isa_tag

    selected = [
        j for j in jobs() if not opts.only or any(s in job_id(j) for s in opts.only.split(","))
    ]
    out = opts.out or ROOT / "benchmarks" / "results" / f"speed-{isa_tag()}.json"
    results, commands = {}, []
    if opts.update:  # re-measure the --only jobs, keep the rest of the earlier run
        earlier = json.loads(out.read_text())
        results, commands = earlier["results"], earlier["commands"]
    commands.append(
        {
            "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "jobs": [job_id(j) for j in selected],
        }
    )
    for job in selected:
        jid = job_id(job)
        results[jid] = spawn(job, opts)
        print(f"{jid}: {json.dumps(results[jid])[:200]}", flush=True)
    report = {
        "benchmark": "training and inference speed, resnetkit vs keras.applications vs PyTorch",
        "commands": commands,
        "date": commands[0]["date"],
        "settings": {
            "warmup": opts.warmup,
            "repeats": opts.repeats,
            "min_seconds": opts.min_seconds,
            "jit": opts.jit,
            "tf_inter_op": opts.tf_inter_op,
            "tf_enable_onednn_opts": opts.onednn,
        },
        "hardware": hardware(),
        "versions": versions(),
        "results": results,
    }
    report["summary"] = summarize(results)
    report["goals"] = goals(report["summary"])
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    if (opts.update or not opts.only) and not opts.no_docs:
        import tables

        for path in tables.update():
            print(f"rewrote {path.relative_to(ROOT)}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
