"""The degradation experiment (He et al. 2016, §4.2 and Figure 6), at a budget this
machine can afford.

Deeper plain networks train *worse* than shallower ones — a higher training error, so not
overfitting — while the same networks with identity shortcuts do not. Each model is
trained by ``resnetkit.training.train`` with one recipe and one budget; a callback adds
the test error after every epoch, so that training and test error can be drawn against
epochs as in Figure 6 (``resnetkit analyze degradation``).

    result = run_degradation(["plain20", "plain56", "resnet20", "resnet56"], out="deg/")
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from resnetkit.analyze.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DATA,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_MODELS,
    DEFAULT_SEED,
    DEFAULT_TEST_SUBSET,
    DEFAULT_TRAIN_SUBSET,
)
from resnetkit.data import ImageSet, load_data
from resnetkit.data.pipeline import build_dataset
from resnetkit.files import save_study
from resnetkit.models import get_variant
from resnetkit.rundir import RunDir
from resnetkit.training.config import Config, from_dict, to_dict

DEGRADATION_JSON = "degradation.json"
DEGRADATION_PNG = "degradation.png"


class TestError(keras.callbacks.Callback):
    """After every epoch, accuracy and loss on held-out images, added to the epoch's
    ``logs`` as ``test_accuracy``/``test_loss`` (``train()`` records them in metrics.jsonl).

    The images are preprocessed as the model's own ``preprocessing`` says (``train()``
    stores the run's preprocessing in the model), in inference mode.
    """

    __test__ = False  # a Keras callback, not a pytest test class

    def __init__(self, images: ImageSet, batch_size: int = 500):
        super().__init__()
        self.images = images
        self.batch_size = batch_size
        self._data = None

    def on_train_begin(self, logs=None):
        prep = getattr(self.model, "preprocessing", None)
        if prep is None:
            raise ValueError("TestError needs a resnetkit model that carries its preprocessing")
        self._data = build_dataset(
            self.images,
            prep,
            channels=self.model.input_shape[-1],
            batch_size=self.batch_size,
            cache="memory",
        )

    def on_epoch_end(self, epoch, logs=None):
        probs = np.asarray(self.model.predict(self._data, verbose=0), dtype=np.float64)
        labels = self.images.labels.astype(np.int64)
        picked = probs[np.arange(len(labels)), labels]
        if logs is not None:
            logs["test_accuracy"] = float(np.mean(probs.argmax(axis=-1) == labels))
            logs["test_loss"] = float(np.mean(-np.log(np.clip(picked, 1e-12, None))))


def degradation_config(
    model: str,
    *,
    data: str = DEFAULT_DATA,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    train_subset: int | None = DEFAULT_TRAIN_SUBSET,
    lr: float = DEFAULT_LR,
    seed: int = DEFAULT_SEED,
    zero_init_residual: bool = False,
) -> Config:
    """The one recipe every model of the experiment trains with.

    He et al.'s: SGD with momentum 0.9, rate ``lr`` for a batch of 128 (scaled linearly),
    weight decay 1e-4. Cosine decay after one warm-up epoch fits the short budget. No
    augmentation: the training error then measures how well the optimizer fits the data,
    which is what degradation is about.

    Every model starts from the same standard (He) initialization, as in the paper.
    ``zero_init_residual`` (off by default) starts each residual branch's last BatchNorm
    scale at 0 (Goyal et al. 2017; plain networks cannot have it, so the recipe then
    differs between the families). Measured at 6 epochs (375 steps) with zero-initialized
    branches both ResNets trained much slower, ResNet-20 worse than plain-20
    (benchmarks/results/degradation/zero-init/).
    """
    return from_dict(
        Config,
        {
            "model": {"name": model, "zero_init_residual": zero_init_residual},
            "data": {
                "source": data,
                "val_fraction": 0.0,
                "batch_size": batch_size,
                "train_subset": train_subset,
                "cache": "memory",
            },
            # Every value set, so that the config a run saves is this recipe as written.
            "augment": {"crop": "none", "flip": False, "pad": 0, "min_area": 1.0},
            "optim": {"name": "sgd", "lr": lr, "momentum": 0.9, "nesterov": False},
            "schedule": {
                "name": "cosine",
                "epochs": epochs,
                "passes_per_epoch": 1,
                "warmup_epochs": 1.0 if epochs > 1 else 0.0,
            },
            # No report.html per model (degradation.png is the result; `resnetkit report
            # RUN_DIR` makes one for a kept run directory).
            "run": {"seed": seed, "precision": "float32", "keep_checkpoints": 1, "report": False},
        },
    )


def _depth(name: str) -> int:
    """Weighted layers on the main path: 2 per basic block, 3 per bottleneck, + stem, head."""
    v = get_variant(name)
    return (3 if v.block == "bottleneck" else 2) * sum(v.depths) + 2


def check_expectations(result: dict) -> list[dict]:
    """He et al.'s two claims, tested on the final training errors.

    Among plain networks the deepest trains worse (higher error) than the shallowest;
    among residual networks the deepest trains at least as well as the shallowest.
    """
    models = result["models"]
    families = {
        "plain": [n for n in models if get_variant(n).shortcut == "none"],
        "residual": [n for n in models if get_variant(n).shortcut != "none"],
    }
    checks = []
    for family, names in families.items():
        if len({_depth(n) for n in names}) < 2:
            continue
        shallow = min(names, key=_depth)
        deep = max(names, key=_depth)
        e_shallow = models[shallow]["final_train_error"]
        e_deep = models[deep]["final_train_error"]
        if family == "plain":
            claim, holds = f"{deep} trains worse than {shallow}", e_deep > e_shallow
        else:
            claim, holds = f"{deep} trains at least as well as {shallow}", e_deep <= e_shallow
        checks.append(
            {
                "claim": claim,
                "holds": bool(holds),
                "deep": deep,
                "shallow": shallow,
                "deep_train_error": e_deep,
                "shallow_train_error": e_shallow,
            }
        )
    return checks


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None


def _checked_models(models, epochs: int, test_subset: int | None) -> list[str]:
    """The model list, refused now (before any training) when a name or count is wrong."""
    models = list(models)
    if not models:
        raise ValueError("--models: name at least one model")
    if len(set(models)) != len(models):
        raise ValueError(f"--models: a model is named twice: {','.join(models)}")
    for name in models:
        get_variant(name)  # unknown names fail now, with suggestions
    if epochs < 1:
        raise ValueError(f"epochs must be positive; got {epochs}")
    if test_subset is not None and test_subset < 0:
        raise ValueError(f"test_subset must be >= 0; got {test_subset}")
    return models


def _curves(name: str, history: list[dict], summary: dict, wall: float) -> dict:
    """One model's row of degradation.json: per-epoch errors and losses, final figures."""
    return {
        "depth": _depth(name),
        "shortcuts": get_variant(name).shortcut != "none",
        "epoch": [r["epoch"] for r in history],
        "train_error": [1.0 - r["accuracy"] for r in history],
        "train_loss": [r["loss"] for r in history],
        "test_error": [1.0 - r["test_accuracy"] for r in history],
        "test_loss": [r["test_loss"] for r in history],
        "final_train_error": 1.0 - history[-1]["accuracy"],
        "final_test_error": 1.0 - summary["test_accuracy"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": wall,
        "images_per_second": summary["images_per_second"],
    }


def run_degradation(
    models: list[str] | tuple[str, ...] = DEFAULT_MODELS,
    *,
    data: str = DEFAULT_DATA,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    train_subset: int | None = DEFAULT_TRAIN_SUBSET,
    test_subset: int | None = DEFAULT_TEST_SUBSET,
    lr: float = DEFAULT_LR,
    seed: int = DEFAULT_SEED,
    out: str | Path | None = None,
    runs_dir: str | Path | None = None,
    stream=None,
    command: str | None = None,
    zero_init_residual: bool = False,
) -> dict:
    """Train every model with ``degradation_config`` and collect its error curves.

    The test error after each epoch is measured on ``test_subset`` test images (stratified;
    None or 0: all), the final test error on the whole test split. Run directories go to
    ``runs_dir`` (kept) or to a temporary folder (deleted). Writes degradation.json and
    degradation.png into ``out`` when given; returns the same data. ``command``: the
    command line that ran it, recorded in the JSON.
    """
    from resnetkit.tasks.classify.inputs import stratified_subset
    from resnetkit.training.engine import train

    models = _checked_models(models, epochs, test_subset)
    configs = {
        name: degradation_config(
            name,
            data=data,
            epochs=epochs,
            batch_size=batch_size,
            train_subset=train_subset,
            lr=lr,
            seed=seed,
            zero_init_residual=zero_init_residual,
        )
        for name in models
    }
    full = load_data(data, val_fraction=0.0, seed=seed)
    test = full.splits.get("test")
    if test is None or not len(test):
        raise ValueError(f"{data}: no test split; the degradation experiment needs one")
    curve_images = stratified_subset(test, test_subset, seed) if test_subset else test

    started, load_start = time.perf_counter(), _load_average()
    root = Path(runs_dir) if runs_dir is not None else Path(tempfile.mkdtemp(prefix="rk-deg-"))
    rows = {}
    try:
        for name in models:
            t0 = time.perf_counter()
            summary = train(
                configs[name], root / name, stream=stream, callbacks=[TestError(curve_images)]
            )
            wall = time.perf_counter() - t0
            rows[name] = _curves(name, RunDir(root / name).read_history(), summary, wall)
    finally:
        if runs_dir is None:
            shutil.rmtree(root, ignore_errors=True)

    result = _result(data, rows, configs[models[0]], full, curve_images, train_subset)
    result.update(
        command=command,
        total_wall_seconds=time.perf_counter() - started,
        # Other processes on the machine slow the run; 1-minute load at start and end.
        load_average={"start": load_start, "end": _load_average()},
    )
    result["expectations"] = check_expectations(result)
    save_study(out, result, DEGRADATION_JSON, degradation_chart, DEGRADATION_PNG)
    return result


def _result(data: str, rows: dict, config, full, curve_images, train_subset) -> dict:
    """degradation.json without the timings: the curves, the recipe and what was measured."""
    from resnetkit.training.hardware import cpu_name
    from resnetkit.versions import versions

    recipe = to_dict(config)
    recipe["model"].pop("name")
    train_images, test = full.splits["train"], full.splits["test"]
    return {
        "experiment": "degradation: He et al. 2016, Figure 6 analogue",
        "command": None,
        "data": data,
        "models": rows,
        "recipe": recipe,
        "train_images": min(train_subset or len(train_images), len(train_images)),
        "test_images": len(test),
        "test_images_per_epoch": len(curve_images),
        "definitions": {
            "train_error": "1 − accuracy over each epoch's training batches as they were "
            "trained on (training mode), Keras' running mean",
            "test_error": f"after each epoch, on {len(curve_images)} test images "
            "(stratified subset when fewer than all)",
            "final_test_error": f"the final model on all {len(test)} test images",
        },
        "total_wall_seconds": None,
        "cpu": cpu_name(),
        "load_average": None,
        "versions": versions(),
    }


def format_degradation(result: dict) -> str:
    """The final errors and times per model, then whether He et al.'s claims hold."""
    header = ("model", "train error", "test error", "train min", "wall min", "img/s")
    rows = [
        (
            name,
            f"{100 * r['final_train_error']:.2f}%",
            f"{100 * r['final_test_error']:.2f}%",
            f"{r['train_seconds'] / 60:.1f}",
            f"{r['wall_seconds'] / 60:.1f}",
            f"{r['images_per_second']:.0f}",
        )
        for name, r in result["models"].items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(
        f"train error: last epoch, {result['train_images']} training images; test error: "
        f"all {result['test_images']} test images"
    )
    for check in result["expectations"]:
        verdict = "holds" if check["holds"] else "does NOT hold"
        lines.append(
            f"{check['claim']}: {verdict} ({100 * check['deep_train_error']:.2f}% vs "
            f"{100 * check['shallow_train_error']:.2f}% training error)"
        )
    return "\n".join(lines)


def degradation_chart(result: dict, path: str | Path) -> None:
    """Training error (thin, dashed) and test error (bold) against epochs, one colour per
    model; plain and residual networks in separate panels with a shared error axis."""
    from resnetkit.plots import _pyplot, save_figure

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    models = result["models"]
    panels = [
        (title, [n for n in models if models[n]["shortcuts"] == residual])
        for title, residual in (("plain networks", False), ("residual networks", True))
    ]
    panels = [(t, names) for t, names in panels if names]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6.2 * len(panels), 4.6), sharey=True, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {name: colors[i % len(colors)] for i, name in enumerate(models)}
    for ax, (title, names) in zip(axes[0], panels, strict=True):
        for name in sorted(names, key=lambda n: models[n]["depth"]):
            r = models[name]
            train_pct = [100 * e for e in r["train_error"]]
            test_pct = [100 * e for e in r["test_error"]]
            ax.plot(r["epoch"], train_pct, "--", lw=1.0, color=color[name], label=f"{name} train")
            ax.plot(
                r["epoch"],
                test_pct,
                "-",
                lw=2.6,
                marker=".",
                color=color[name],
                label=f"{name} test",
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("error (%)")
    fig.suptitle(
        f"Degradation on {result['data']}: {result['train_images']:,} training images, "
        f"{len(next(iter(models.values()))['epoch'])} epochs "
        f"(dashed: training error, bold: test error on {result['test_images_per_epoch']:,})"
    )
    save_figure(fig, path)
