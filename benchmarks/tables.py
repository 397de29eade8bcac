"""The tables of measured figures in README.md and docs/*.md, generated from benchmarks/results.

    make docs                          # or: .venv/bin/python benchmarks/tables.py
    .venv/bin/python benchmarks/tables.py --check    # exit 1 if a doc differs

A doc marks each table with a pair of comments and this script rewrites what lies between them:

    <!-- table: NAME -->            or   <!-- table: NAME:ARGUMENT -->
    ...generated, never edited by hand...
    <!-- /table -->

NAME is one of TABLES below (``--list`` prints them); the argument picks a file or a topic. The
figures, and which machine they came from, stay in the JSON files; a benchmark that writes new
results calls ``update()`` (or run ``make docs``), and tests/test_docs_tables.py fails when a
committed doc differs from what this script writes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/speed.py, when imported from the tests
    sys.path.insert(0, str(HERE))
import speed  # noqa: E402

ROOT = HERE.parent
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"^<!-- table: ([\w.:-]+) -->\n(.*?)^<!-- /table -->$", re.S | re.M)

TABLES: dict[str, Callable[[Path, str], str]] = {}


def documents(root: Path = ROOT) -> list[Path]:
    """Every doc that may hold generated tables."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def table(name: str):
    def register(fn):
        TABLES[name] = fn
        return fn

    return register


def load(results: Path, name: str) -> dict:
    return json.loads((results / name).read_text())


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def diff(x: float) -> str:
    """A parity difference: two significant digits when tiny, three otherwise."""
    return f"{x:.2g}" if x < 0.01 else f"{x:.3g}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def rows(header: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(map(str, r)) + " |" for r in body),
    ]


def machine(hardware: dict, isa: str | None = None) -> str:
    """'AMD EPYC, 2 cores, avx2': the CPU, its cores and the ISA tag, as far as recorded."""
    cores = hardware.get("cores", hardware.get("cpus"))
    parts = [hardware.get("cpu", "?")] + ([f"{cores} cores"] if cores else [])
    tag = hardware.get("isa", isa)
    return ", ".join(parts + ([tag] if tag else []))


def provenance(results: Path, key: str) -> dict:
    """The machine of a result whose own file predates the ISA tag (measurements.json)."""
    return load(results, "measurements.json")["machines"].get(key, {})


# --- speed ------------------------------------------------------------------------------------


@table("speed")
def speed_table(results: Path, arg: str) -> str:
    """benchmarks/speed.py's tables, one per speed-<isa>.json."""
    parts = []
    for path in sorted(results.glob("speed-*.json")):
        report = json.loads(path.read_text())
        first, *later = report["commands"]
        runs = [f"`{first['command'].strip()}` ({first['date']}, {len(first['jobs'])} jobs)"]
        runs += [
            f"then `{c['command'].strip()}` ({c['date']}: {', '.join(c['jobs'])})" for c in later
        ]
        parts.append(f"{speed.table(report)}\n\n`{path.name}`: {'; '.join(runs)}.")
    return "\n\n".join(parts)


# --- the zoo ----------------------------------------------------------------------------------


@table("zoo")
def zoo_table(results: Path, arg: str) -> str:
    """The model table that ships with resnetkit (src/resnetkit/models/zoo.json)."""
    from resnetkit.zoo_table import shipped_table

    body = [
        [
            f"`{e.name}`",
            e.family,
            num(e.trainable_params),
            num(e.total_params),
            f"{e.gmacs:.4f}",
            "×".join(map(str, e.input_size)),
            e.num_classes,
        ]
        for e in shipped_table()
    ]
    header = ["name", "family", "trainable params", "total params", "GMACs", "input", "classes"]
    return "\n".join(rows(header, body))


# --- Fashion-MNIST recipes ----------------------------------------------------------------------


def recipe_files(results: Path) -> list[Path]:
    """The recipes' results: fashion_mnist-RECIPE-ISA.json (the searches are shown apart)."""
    found = results.glob("fashion_mnist-*.json")
    return sorted(p for p in found if not p.stem.startswith("fashion_mnist-fast-search"))


@table("recipes")
def recipes_table(results: Path, arg: str) -> str:
    """Every benchmarks/fashion_mnist.py result: one row per recipe and machine."""
    body = []
    for path in recipe_files(results):
        d = json.loads(path.read_text())
        isa = path.stem.rsplit("-", 1)[1]
        config = yaml.safe_load(d["config_text"])
        runs = d["runs"]
        seeds = " / ".join(pct(r["test_accuracy"]) for r in runs)
        no_tta = [r.get("test_accuracy_no_tta") for r in runs]
        wall = []
        for r in runs:
            parts = [s["seconds"] for s in r.get("segments", [])]
            text = minutes(r["wall_seconds"])
            if len(parts) > 1:
                text += " (" + " + ".join(minutes(s) for s in parts) + ", resumed)"
            wall.append(text)
        precision = runs[0].get("precision", config.get("run", {}).get("precision", "?"))
        body.append(
            [
                f"`{Path(d['config']).name}`",
                config["model"]["name"],
                f"{machine(d['hardware'], isa)}; {precision}",
                ", ".join(str(r["seed"]) for r in runs),
                seeds,
                f"**{pct(d['median_test_accuracy'])}**",
                " / ".join(pct(x) for x in no_tta) if all(no_tta) else "–",
                " / ".join(wall),
                str(config["schedule"].get("budget_minutes") or "–"),
                " / ".join(str(r.get("epochs", len(r.get("curve", [])))) for r in runs),
                " / ".join(num(r["images_per_second"]) for r in runs),
                f"{pct(d['target_accuracy'], 0)} in {d['budget_seconds'] / 60:.0f} min: "
                + ("**met**" if d["goal_met"] else "not met"),
                f"`{path.name}`",
            ]
        )
    header = [
        "recipe",
        "model",
        "machine; precision",
        "seeds",
        "test accuracy (flip TTA)",
        "median",
        "without TTA",
        "minutes, process start to exit",
        "training budget (min)",
        "epochs",
        "images/s",
        "goal",
        "results",
    ]
    return "\n".join(rows(header, body))


SEARCH_COLUMNS = {
    "change": "change",
    "model": "model",
    "batch_size": "batch",
    "crop": "crop",
    "weight_decay": "weight decay",
    "lr": "lr",
    "epochs_fitted": "epochs",
    "test_accuracy_flip_tta": "test (flip TTA)",
    "test_accuracy": "test",
    "train_accuracy_last_epoch": "training accuracy, last epoch",
    "images_per_second": "images/s",
    "wall_seconds": "minutes",
}


@table("search")
def search_table(results: Path, arg: str) -> str:
    """One recipe search (fashion_mnist-fast-search-ARG.json): one row per single-seed run."""
    d = load(results, f"fashion_mnist-fast-search-{arg}.json")
    keys = [k for k in SEARCH_COLUMNS if any(k in r for r in d["runs"])]

    def cell(key: str, value) -> str:
        if value is None:
            return "–"
        if "accuracy" in key:
            return pct(value)
        if key == "wall_seconds":
            return minutes(value)
        if key == "images_per_second":
            return num(value)
        return str(value)

    body = [[cell(k, r.get(k)) for k in keys] for r in d["runs"]]
    lines = [f"Measured {d['date']} on {machine(d['hardware'], arg)}. {d['note']}", ""]
    return "\n".join(lines + rows([SEARCH_COLUMNS[k] for k in keys], body))


@table("curve")
def curve_table(results: Path, arg: str) -> str:
    """A run directory kept in results/ARG: its per-epoch metrics and test accuracy."""
    folder = results / arg
    summary = json.loads((folder / "summary.json").read_text())
    config = yaml.safe_load((folder / "config.yaml").read_text())
    with open(folder / "metrics.csv", newline="") as f:
        epochs = list(csv.DictReader(f))
    where = provenance(results, arg)
    head = (
        f"`{summary['model']}` on {summary['data']}, {summary['epochs']} epochs, "
        f"{config['run']['precision']}, {minutes(summary['train_seconds'])} min of training at "
        f"{num(summary['images_per_second'])} images/s on {where.get('cpu', '?')} "
        f"({where.get('isa', 'ISA unrecorded')}): test accuracy "
        f"**{pct(summary['test_accuracy'])}**."
    )
    body = [
        [
            e["epoch"],
            f"{float(e['lr']):.3g}",
            pct(float(e["accuracy"]), 1),
            pct(float(e["val_accuracy"]), 1),
        ]
        for e in epochs
    ]
    return "\n".join(
        [head, "", *rows(["epoch", "lr", "training accuracy", "validation accuracy"], body)]
    )


# --- transfer -------------------------------------------------------------------------------


@table("transfer")
def transfer_table(results: Path, arg: str) -> str:
    d = load(results, "transfer.json")
    strategies = list(next(iter(d["median_test_accuracy"].values())))
    body = []
    total = d["pretrain"]["seconds"] + d.get("pretrain_defaults", {}).get("seconds", 0)
    for labels, medians in d["median_test_accuracy"].items():
        row = [labels]
        for s in strategies:
            runs = d["runs"][labels][s]
            accs = [r["test_accuracy"] for r in runs]
            secs = statistics.median(r["seconds"] for r in runs)
            total += sum(r["seconds"] for r in runs)
            row.append(
                f"{100 * medians[s]:.1f} ({100 * min(accs):.1f}–{100 * max(accs):.1f}), "
                f"{secs:.0f} s"
            )
        tuned = max(medians[k] for k in ("full", "two-stage"))
        row.append(f"{100 * (tuned - medians['scratch']):+.1f}")
        if "defaults two-stage" in medians:
            gain = medians["defaults two-stage"] - medians["defaults scratch"]
            row.append(f"{100 * gain:+.1f}")
        body.append(row)
    names = {"scratch": "from scratch", "linear": "linear probe", "full": "full fine-tune"}
    header = ["labels per class", *(names.get(s, s) for s in strategies)]
    header.append("best fine-tune − scratch (points)")
    if "defaults two-stage" in strategies:
        header.append("defaults: two-stage − scratch (points)")
    p = d["pretrain"]
    plain = d.get("pretrain_defaults")
    plain_line = (
        f" The defaults' source (no flags but `--epochs {plain['epochs']}`) reached "
        f"{pct(plain['test_accuracy'])}."
        if plain
        else ""
    )
    return "\n".join(
        [
            f"Measured {d['date']} on {machine(d['hardware'])}, seeds "
            f"{', '.join(map(str, d['seeds']))}; {d['model']}. The tuned source model reached "
            f"{pct(p['test_accuracy'])} on classes 0–4 after {p['epochs']} epochs.{plain_line} "
            f"{total / 60:.0f} min of runs in all.",
            "",
            *rows(header, body),
        ]
    )


# --- segmentation -----------------------------------------------------------------------------


@table("segmentation")
def segmentation_table(results: Path, arg: str) -> str:
    """benchmarks/segmentation.py: ARG "strides" or "transfer"."""
    d = load(results, "segmentation.json")
    head = (
        f"Measured {d['date']} on {machine(d['hardware'])}: {d['steps']} steps at batch "
        f"{d['batch']} per run, `{d['command']}`."
    )
    if arg == "strides":
        body = [
            [f"`{r['model']}`", r["output_stride"], f"{r['val_miou']:.3f}",
             f"{r['final_val_miou']:.3f}", num(r["train_images_per_s"], 1)]
            for r in d["strides"]
        ]  # fmt: skip
        header = ["model", "output stride", "val mIoU (best epoch)", "val mIoU (last)",
                  "training images/s"]  # fmt: skip
        return "\n".join([head, "", *rows(header, body)])
    return finetune_table(d, head, "val_miou", "best validation mIoU of each run")


def finetune_table(d: dict, head: str, metric: str, what: str) -> str:
    """Fine-tuned against from scratch, by number of training scenes: the medians and ranges
    of ``metric`` over the seeds (``common.finetune_against_scratch``'s rows)."""
    by = {}
    for r in d["transfer"]:
        by.setdefault(r["train_scenes"], {}).setdefault(r["kind"], []).append(r[metric])
    body = []
    for count, kinds in sorted(by.items()):
        if not {"scratch", "finetune"} <= set(kinds):
            continue
        med = {k: statistics.median(v) for k, v in kinds.items()}
        cells = [f"{med[k]:.3f} ({min(kinds[k]):.3f}–{max(kinds[k]):.3f})"
                 for k in ("scratch", "finetune")]  # fmt: skip
        body.append([f"{count:,}", *cells, f"{med['finetune'] - med['scratch']:+.3f}",
                     len(kinds["scratch"])])  # fmt: skip
    header = ["training scenes", "from scratch: median (range)", "fine-tuned: median (range)",
              "fine-tuned − scratch", "seeds"]  # fmt: skip
    model = d["transfer"][0]["model"] if d["transfer"] else "?"
    return "\n".join([f"{head} `{model}`; {what}.", "", *rows(header, body)])


@table("segmentation-speed")
def segmentation_speed_table(results: Path, arg: str) -> str:
    """benchmarks/segmentation_speed.py: one table per segmentation-speed-<isa>.json."""
    parts = []
    for path in sorted(results.glob("segmentation-speed-*.json")):
        d = json.loads(path.read_text())
        st = d["settings"]
        body = []
        for peer, s in d["summary"].items():
            opts = ", ".join(f"{k}={v}" for k, v in s["options"].items()) or "defaults"
            ours = d["results"][f"resnetkit-{peer}"]
            theirs = d["results"][s["peer"]]
            macs = f"{ours['macs'] / 1e9:.1f} / " + (
                f"{theirs['macs'] / 1e9:.1f}" if "macs" in theirs else "the same network"
            )
            body.append([f"`{s['resnetkit_model']}` ({opts})", f"{s['resnetkit']:.2f}",
                         s["peer"], f"{s['peer_images_per_second']:.2f}", f"{s['ratio']:.2f}×",
                         macs])  # fmt: skip
        header = ["resnetkit model", "images/s", "peer", "images/s", "ratio",
                  "GMACs per image (ours / peer)"]  # fmt: skip
        parts.append("\n".join([
            f"Measured {d['date']} on {machine(d['hardware'])}: training steps at "
            f"{st['size']}×{st['size']}, batch {st['batch']}, {st['classes']} classes; "
            f"`{path.name}`.", "", *rows(header, body)]))  # fmt: skip
    return "\n\n".join(parts)


# --- detection --------------------------------------------------------------------------------


@table("detection")
def detection_table(results: Path, arg: str) -> str:
    """benchmarks/detection.py: ARG "coverage", "backbones" or "transfer"."""
    d = load(results, "detection.json")
    head = (
        f"Measured {d['date']} on {machine(d['hardware'])}: {d['steps']} steps at batch "
        f"{d['batch']} per run, `{d['command']}`."
    )
    if arg == "coverage":
        c = d["coverage"]
        body = [[k, pct(c["chosen_per_class"][k]), pct(c["torchvision_per_class"][k])]
                for k in c["chosen_per_class"]]  # fmt: skip
        body.append(["**all**", f"**{pct(c['chosen'])}**", f"**{pct(c['torchvision'])}**"])
        sizes = ", ".join(f"{s:g}" for s in c["chosen_smallest_anchors"])
        header = ["class", f"chosen anchors ({sizes} px)", "torchvision's (32 … 512 px)"]
        return "\n".join([
            f"{head} Anchor coverage at IoU ≥ 0.5 of the {c['boxes']:,} training boxes on the "
            f"{c['canvas']}-pixel canvas of `{c['model']}`:", "", *rows(header, body)])  # fmt: skip
    if arg == "backbones":
        body = [[f"`{r['model']}`", f"{r['val_map']:.3f}", f"{r['val_map_50']:.3f}",
                 num(r["train_images_per_s"], 1), f"{r['seconds'] / 60:.1f}"]
                for r in d["backbones"]]  # fmt: skip
        header = ["model", "val mAP", "val mAP@0.5", "training images/s", "minutes"]
        return "\n".join([f"{head} {d['backbones'][0]['train_scenes']:,} training scenes; "
                          "COCO mAP by pycocotools.", "", *rows(header, body)])  # fmt: skip
    return finetune_table(d, head, "val_map", "validation COCO mAP of each run")


@table("detection-speed")
def detection_speed_table(results: Path, arg: str) -> str:
    """benchmarks/detection_speed.py: one table per detection-speed-<isa>.json."""
    parts = []
    for path in sorted(results.glob("detection-speed-*.json")):
        d = json.loads(path.read_text())
        st = d["settings"]
        body = []
        for what, s in d["summary"].items():
            if "latency_ms" in s:
                ours, theirs = f"{s['latency_ms']:.0f} ms", f"{s['peer_latency_ms']:.0f} ms"
            else:
                ours = f"{s['resnetkit']:.2f} img/s"
                theirs = f"{s['peer_images_per_second']:.2f} img/s"
            body.append([what, ours, s["peer"], theirs, f"{s['ratio']:.2f}×",
                         f"{s['goal']:g}×", "yes" if s["met"] else "**no**"])  # fmt: skip
        header = ["measure", "resnetkit", "peer", "peer's", "ratio", "goal", "met"]
        parts.append("\n".join([
            f"Measured {d['date']} on {machine(d['hardware'])}: `retinanet_resnet50_fpn`, "
            f"{st['size']}×{st['size']}, training batch {st['batch']}, inference batch 1, "
            f"{st['classes']} classes; `{path.name}`.", "", *rows(header, body)]))  # fmt: skip
    return "\n\n".join(parts)


# --- export and serve -----------------------------------------------------------------------

FORMATS = {"savedmodel": "SavedModel", "onnx": "ONNX", "litert": "LiteRT float32"}


@table("export")
def export_table(results: Path, arg: str) -> str:
    """The model cards results/export/ARG-*.model_card.json, one row per artifact."""
    cards = [
        (p.name.removesuffix(".model_card.json").removeprefix(f"{arg}-"), json.loads(p.read_text()))
        for p in sorted((results / "export").glob(f"{arg}-*.model_card.json"))
    ]
    order = {"savedmodel": 0, "onnx": 1, "litert": 2, "int8": 3}
    cards.sort(key=lambda c: order.get(c[0], 9))
    body = []
    for kind, c in cards:
        name = FORMATS.get(kind, f"LiteRT {kind} (`--quantize {kind}`)")
        if c["input"]["preprocessing_inside"] != "none":
            name += " (+ preprocessing)"
        shape = c["input"]["shape"]
        size = "any size" if shape[1] is None else f"{shape[1]}×{shape[2]}"
        p = c["parity"]
        body.append(
            [
                name,
                f"{c['input']['dtype']}, {size}",
                num(p["images"]),
                diff(p["max_abs_diff"]) + (" (probabilities)" if "min_top1_agreement" in p else ""),
                pct(p["top1_agreement"]),
                f"{pct(p['accuracy_keras'])} → {pct(p['accuracy_artifact'])}",
                f"{c['artifact_file']['bytes'] / 1e6:.2f} MB",
            ]
        )
    c = cards[0][1]
    fold = max(card["parity"]["batchnorm_fold_max_abs_diff"] for _, card in cards)
    where = provenance(results, f"export/{arg}")
    m = c["metrics"]
    head = (
        f"Source: a `{c['architecture']['name']}` run of {m['epochs']} epochs "
        f"({c['weights']['origin']}; test accuracy {pct(m['test_accuracy'])} with flip TTA, "
        f"{pct(m['test_accuracy_no_tta'])} without), exported {c['created'][:10]} on "
        f"{where.get('cpu', '?')} ({where.get('isa', 'ISA unrecorded')}); "
        f"{c['optimizations']['batchnorm_folded']} BatchNorms folded "
        f"(folding alone changed outputs by ≤ {diff(fold)}). "
        f"Checked on {re.sub(r'[0-9]+ images', 'images', c['parity']['data'])}."
    )
    header = [
        "format",
        "input",
        "images checked",
        "max abs diff",
        "top-1 agreement",
        "accuracy, Keras → artifact",
        "size",
    ]
    return "\n".join([head, "", *rows(header, body)])


@table("serve")
def serve_table(results: Path, arg: str) -> str:
    d = load(results, "serve_load.json")
    body = []
    for key in ("batching", "no_batching"):
        r = d[key]
        lat = r["latency_ms_good"]
        statuses = ", ".join(f"{n}×{code}" for code, n in r["statuses"].items() if code != "200")
        body.append(
            [
                " ".join(r["server_options"]),
                f"{num(r['requests'])} ({statuses})",
                f"{r['lost']} / {r['server_errors']} / {r['wrong_answers']}",
                f"{r['throughput_requests_per_s']}",
                f"{lat['p50']:.0f} / {lat['p90']:.0f} / {lat['p99']:.0f}",
                f"{r['server_mean_batch_size']} (largest {r['server_largest_batch']})",
            ]
        )
    header = [
        "server",
        "requests (malformed answered)",
        "lost / 5xx / wrong answers",
        "requests/s",
        "latency p50 / p90 / p99 (ms)",
        "mean batch",
    ]
    return "\n".join(
        [
            f"{d['what']}. Machine: {machine(d['hardware'])}. Malformed kinds: "
            f"{', '.join(d['malformed_kinds'])}.",
            "",
            *rows(header, body),
            "",
            f"Batching serves {d['batching_speedup']}× the requests per second.",
        ]
    )


# --- insight: degradation and gradients ------------------------------------------------------


@table("degradation")
def degradation_table(results: Path, arg: str) -> str:
    """results/degradation[/ARG]/degradation.json: one row per network, then the checks."""
    folder = results / "degradation" / arg if arg else results / "degradation"
    d = json.loads((folder / "degradation.json").read_text())
    body = [
        [
            name,
            "yes" if m["shortcuts"] else "no",
            pct(m["final_train_error"]),
            pct(m["final_test_error"]),
            f"{minutes(m['wall_seconds'])} min",
        ]
        for name, m in d["models"].items()
    ]
    epochs = len(next(iter(d["models"].values()))["epoch"])
    where = provenance(results, "degradation")
    checks = [
        f"- {e['claim']}: **{'holds' if e['holds'] else 'does not hold'}** "
        f"({pct(e['deep_train_error'])} against {pct(e['shallow_train_error'])})"
        for e in d["expectations"]
    ]
    head = (
        f"`{d['command'].split(' --out')[0]}`: {epochs} epochs on {num(d['train_images'])} "
        f"training images, {minutes(d['total_wall_seconds'])} min in all on {d['cpu']} "
        f"({where.get('isa', 'ISA unrecorded')}; load average {d['load_average']['start']:.1f} "
        f"at the start, {d['load_average']['end']:.1f} at the end)."
    )
    header = ["model", "shortcuts", "final training error", "final test error", "wall time"]
    return "\n".join([head, "", *rows(header, body), "", *checks])


@table("gradients")
def gradients_table(results: Path, arg: str) -> str:
    d = load(results, "degradation/gradients/gradients.json")
    body = []
    for name, m in d["models"].items():
        row = [name]
        for phase in ("init", "trained"):
            conv = [
                g
                for g, layer in zip(m[phase]["grad_norm"], m["layers"], strict=True)
                if not layer.startswith("head")
            ]
            row += [num(conv[0] / conv[-1], 1), num(max(conv) / min(conv), 1)]
        row.append(f"{minutes(m['seconds'])} min")
        body.append(row)
    header = [
        "model",
        "first conv / last conv, at initialization",
        "largest / smallest, at initialization",
        f"first / last, after {d['steps']} steps",
        f"largest / smallest, after {d['steps']} steps",
        "time",
    ]
    return "\n".join(
        [
            f"Gradient norms of the convolution kernels ({d['measured_on']}; {d['optimizer']}, "
            f"lr {d['lr']}), {d['versions']['cpus']} CPUs.",
            "",
            *rows(header, body),
        ]
    )


# --- data pipeline ---------------------------------------------------------------------------


@table("pipeline")
def pipeline_table(results: Path, arg: str) -> str:
    d = load(results, "pipeline.json")
    names = {
        "resnetkit": "resnetkit",
        "keras": "keras `image_dataset_from_directory`",
        "torchvision": "torchvision `ImageFolder` + `DataLoader(num_workers=2)`",
    }
    body = [
        [
            names.get(k, k),
            num(v),
            num(d["min_max_images_per_second"][k][1]),
            num(d["min_max_images_per_second"][k][0]),
        ]
        for k, v in d["median_images_per_second"].items()
    ]
    header = ["pipeline", "median images/s", "best run", "slowest run"]
    return "\n".join(
        [
            f"Measured {d['date']} on {machine(d['hardware'])}: {d['data']}, {d['runs']} rounds.",
            "",
            *rows(header, body),
            "",
            f"Against the faster peer ({d['fastest_peer']}): {d['ratio_vs_fastest_peer']:.2f} "
            f"(medians), {d['median_ratio_per_round']:.2f} (median per round), "
            f"{d['ratio_best_run_vs_best_run']:.2f} (best runs); goal: {d['goal']}.",
        ]
    )


# --- measured by hand ------------------------------------------------------------------------


@table("measurements")
def measurements_table(results: Path, arg: str) -> str:
    """The entries of measurements.json whose doc is ARG."""
    entries = [m for m in load(results, "measurements.json")["measurements"] if m["doc"] == arg]
    if not entries:
        raise ValueError(f"measurements.json has no entry for doc {arg!r}")
    body = [[m["what"], m["value"], m["isa"], m["source"]] for m in entries]
    return "\n".join(rows(["measured", "figure", "machine", "source"], body))


# --- the rewriting -----------------------------------------------------------------------------


def generate(spec: str, results: Path = RESULTS) -> str:
    name, _, arg = spec.partition(":")
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
    return TABLES[name](results, arg)


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked table regenerated."""
    return MARKER.sub(
        lambda m: f"<!-- table: {m[1]} -->\n{generate(m[1], results)}\n<!-- /table -->", text
    )


def stale(root: Path = ROOT, results: Path = RESULTS) -> list[Path]:
    """The docs whose tables differ from what ``render`` writes."""
    return [p for p in documents(root) if render(p.read_text(), results) != p.read_text()]


def update(root: Path = ROOT, results: Path = RESULTS) -> list[Path]:
    """Rewrite every doc whose tables are out of date; returns those rewritten."""
    changed = stale(root, results)
    for path in changed:
        path.write_text(render(path.read_text(), results))
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a doc is out of date")
    parser.add_argument("--list", action="store_true", help="print the table names")
    opts = parser.parse_args()
    if opts.list:
        for name, fn in sorted(TABLES.items()):
            print(f"{name:14} {(fn.__doc__ or '').strip()}")
        return 0
    if opts.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"{path.relative_to(ROOT)}: tables differ from benchmarks/results")
        return 1 if out_of_date else 0
    for path in update():
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
