"""``train(config, run_dir)``: one typed config in, one complete run directory out.

    run_dir/
        config.yaml         the resolved config (``resnetkit train --config`` it to rerun)
        class_map.json      class names in label order
        checkpoints/        the last ``run.keep_checkpoints`` + the best (see checkpoint.py)
        metrics.csv, metrics.jsonl, curves.png   per epoch
        tensorboard/        TensorBoard logs
        bad_images.csv      files skipped as unreadable
        model.keras         the final model (EMA weights when optim.ema_decay is set)
        summary.json        best/final/test metrics, wall time, images/second, versions

Training is Keras ``fit`` inside a tf.distribute strategy scope. Exact resume rests on two
things: checkpoints hold the optimizer state and the position in the data stream, and the
training stream's order and augmentation are a function of (seed, epoch) alone
(``build_dataset``), so the batches after a resume are those an uninterrupted run would see.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data import DataSource, ImageSet, load_data, save_class_map
from resnetkit.data.checks import apply_bad_image_policy, scan_images
from resnetkit.data.pipeline import BadImageLog, build_dataset
from resnetkit.preprocessing import Preprocessing
from resnetkit.training.callbacks import (
    NanGuard,
    Progress,
    RunInterrupted,
    RunRecorder,
    StopSignals,
)
from resnetkit.training.checkpoint import Checkpoints, restore_network
from resnetkit.training.config import Config, load_config, save_config
from resnetkit.training.distribute import is_chief, make_strategy, unscoped_build
from resnetkit.training.hardware import (
    resolve_precision,
    slow_precision_warning,
)
from resnetkit.training.optim import make_optimizer
from resnetkit.transfer.finetune import (
    Phase,
    Source,
    load_source,
    lr_scale,
    plan_phases,
    resolve_source,
    set_trainable,
    stage_names,
)
from resnetkit.versions import versions
from resnetkit.weights.specs import REGISTRY

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass
class Inputs:
    """What the data decides about the model: geometry, preprocessing, classes."""

    source: DataSource
    prep: Preprocessing
    input_shape: tuple[int, int, int]
    pretrained: Source | None = None  # fine-tuning: where the weights come from

    @property
    def channels(self) -> int:
        return self.input_shape[-1]


def default_run_dir(config: Config) -> Path:
    data = Path(config.data.source).name or "data"
    return Path("runs") / f"{config.model.name}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: Config | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stream=None,
    callbacks: list | tuple = (),
) -> dict:
    """Train per ``config`` into ``run_dir`` (or resume the run there); return the summary.

    ``callbacks``: extra Keras callbacks, called before resnetkit's own, so that metrics
    they add to an epoch's ``logs`` are recorded in metrics.jsonl/csv.

    Raises ``RunInterrupted`` after SIGTERM/SIGINT (a checkpoint was saved),
    ``TrainingDiverged`` on a NaN/inf loss, ``CheckpointError`` when the run directory
    cannot be written.
    """
    started = time.perf_counter()
    stream = stream or sys.stdout
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        run_dir = Path(run_dir)
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir}: not a resnetkit run directory (no config.yaml)")
        config = load_config(run_dir / "config.yaml")
    else:
        config = config or Config()
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        precision = resolve_precision(config.run.precision)  # config.yaml records the choice
        config = replace(config, run=replace(config.run, precision=precision))
    _check_config(config)
    warning = slow_precision_warning(config.run.precision)
    if warning:
        print(warning, file=stream)

    strategy = make_strategy(config.run.strategy)  # first: multi-worker set-up precedes all ops
    # Every worker runs the same code, saves included (reading synchronized variables is a
    # collective op); only the chief writes into run_dir, the others into a temporary folder.
    chief = is_chief(strategy)
    out_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="resnetkit-worker-"))
    created = not out_dir.exists()
    _prepare_run_dir(out_dir, resume and chief)
    keras.utils.set_random_seed(config.run.seed)
    if config.run.deterministic:
        tf.config.experimental.enable_op_determinism()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.run.precision)
    try:
        return _train(config, run_dir, out_dir, resume, strategy, chief, started, stream, callbacks)
    except BaseException:
        if created and not (out_dir / "config.yaml").exists():  # failed before it began
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if not chief:
            shutil.rmtree(out_dir, ignore_errors=True)


def _train(
    config, run_dir, out_dir, resume, strategy, chief, started, stream, extra_callbacks=()
) -> dict:
    inputs = resolve_inputs(config)
    c = config
    if inputs.pretrained is not None:  # the saved config names the architecture used
        c = replace(c, model=replace(c.model, name=inputs.pretrained.arch))
    source = inputs.source
    bad = list(source.bad)
    if c.data.on_bad_image == "error":  # decode everything now, so nothing fails later
        bad += _scan_all(source, c.data.max_pixels)
    print(
        apply_bad_image_policy(bad, c.data.on_bad_image, report=out_dir / "bad_images.csv"),
        file=stream,
    )
    ft = c.finetune if inputs.pretrained is not None else None
    train_split = source.splits["train"]
    if c.data.batch_size > len(train_split):  # small data sets: one batch of everything
        print(
            f"data.batch_size={c.data.batch_size} is larger than the training split; "
            f"using {len(train_split)}",
            file=stream,
        )
        c = replace(c, data=replace(c.data, batch_size=len(train_split)))
    batch = c.data.batch_size
    steps = len(train_split) // batch
    if c.schedule.budget_minutes is not None and not resume:
        c = _fit_to_budget(c, inputs, strategy, started, stream)
    epochs = c.schedule.epochs
    names = stage_names(c.model.name)
    # Planned (and checked) before anything is written into the run directory.
    phases = plan_phases(ft, epochs, names) if ft else [Phase(0, epochs, tuple(names))]
    patience = ft.patience if ft else None
    if patience is not None and not len(source.splits.get("val") or ()):
        raise ValueError("finetune.patience needs validation data: set data.val_fraction > 0")
    save_config(c, out_dir / "config.yaml")
    save_class_map(out_dir / "class_map.json", source.class_names)
    one_hot = bool(c.augment.mixup or c.augment.cutmix or c.optim.label_smoothing)
    bad_log = BadImageLog()

    with strategy.scope():
        model = build_model(c, inputs, stream)
    scale = lr_scale(model, ft.lr_decay, ft.head_lr_mult) if ft else None

    def enter(phase: Phase) -> None:
        """Set the phase's trainable layers and compile with a fresh optimizer."""
        schedule = c.schedule
        if ft:
            set_trainable(model, phase.trainable, ft.bn_policy)
            warmup = min(schedule.warmup_epochs, phase.epochs / 2)
            schedule = replace(schedule, epochs=phase.epochs, warmup_epochs=warmup)
        with strategy.scope():
            optimizer = make_optimizer(
                c.optim,
                schedule,
                batch_size=batch,
                steps_per_epoch=steps,
                variables=model.trainable_variables,
                lr_scale=scale,
            )
            model.compile(
                optimizer=optimizer,
                loss=_loss(one_hot, c.optim.label_smoothing),
                metrics=_metrics(one_hot, source.num_classes),
                jit_compile=c.run.jit_compile,
            )
        unscoped_build(model, strategy)  # fit() and evaluate() run inside the scope below

    checkpoints = Checkpoints(out_dir / "checkpoints", keep=c.run.keep_checkpoints)
    state = {"epochs_done": 0, "step": 0, "history": [], "best": None, "train_seconds": 0.0}
    latest = None
    if resume:
        checkpoints.clean()
        latest = Checkpoints(run_dir / "checkpoints").latest()  # the chief's, for every worker
        if latest is not None:
            state = Checkpoints.read_state(latest)
    # The phase the checkpoint was written in: its optimizer variables are that phase's.
    done = state["epochs_done"]
    at = min(done if state["step"] else max(done - 1, 0), epochs - 1)
    current = next(i for i, p in enumerate(phases) if p.first <= at < p.end)
    enter(phases[current])
    if latest is not None:
        Checkpoints.restore(model, latest)
        print(f"resumed from {latest}", file=stream)

    # One call for training and evaluation data alike: the preprocessing cannot drift.
    common = {
        "channels": inputs.channels,
        "batch_size": batch,
        "bad_log": bad_log,
        "max_pixels": c.data.max_pixels,
    }

    def stream_from(first_epoch: int, epochs: int, skip: int) -> tf.data.Dataset:
        ds = build_dataset(
            train_split,
            inputs.prep,
            **common,
            training=True,
            augment=c.augment,
            num_classes=source.num_classes,
            seed=c.run.seed,
            cache=c.data.cache,
            drop_remainder=True,
            epochs=epochs,
            first_epoch=first_epoch,
            skip_batches=skip,
        )
        return _distributable(_as_one_hot(ds, one_hot, source.num_classes))

    def eval_data(split: ImageSet) -> tf.data.Dataset:
        ds = build_dataset(
            split,
            inputs.prep,
            **common,
            cache=c.data.cache if split is source.splits.get("val") else None,
        )
        return _distributable(_as_one_hot(ds, one_hot, source.num_classes))

    val = source.splits.get("val")
    val_ds = eval_data(val) if val is not None and len(val) else None
    class_weight = _class_weight(c.data.class_weight, train_split.labels, source.num_classes)
    with StopSignals() as signals, strategy.scope():
        recorder = RunRecorder(
            out_dir,
            checkpoints,
            state,
            steps_per_epoch=steps,
            batch_size=batch,
            monitor="val_accuracy" if val_ds is not None else None,
            signals=signals,
            patience=patience,
            patience_from=phases[-1].first,
        )
        guard, progress = NanGuard(steps, c.run.precision), Progress(epochs, steps, batch, stream)
        positioned = [guard, progress, recorder]  # they need the step offset of a resume
        callbacks = [
            *([keras.callbacks.SwapEMAWeights()] if c.optim.ema_decay is not None else []),
            *extra_callbacks,
            *positioned,
            keras.callbacks.TensorBoard(
                str(out_dir / "tensorboard"), write_graph=False, profile_batch=0
            ),
        ]
        for i in range(current, len(phases)):
            phase = phases[i]
            if state.get("stopped_early"):
                break
            if i != current:
                enter(phase)
            # A run stopped mid-epoch first finishes that epoch, then runs whole epochs.
            first = max(state["epochs_done"], phase.first)
            skip = state["step"] if state["epochs_done"] >= phase.first else 0
            segments = []
            if skip and first < phase.end:
                segments.append((first, steps - skip, skip))
                first += 1
            if first < phase.end:
                segments.append((first, steps, 0))
            for epoch, n_steps, skip in segments:
                for callback in positioned:
                    callback.offset = skip
                span = 1 if skip else phase.end - epoch
                model.fit(
                    stream_from(epoch, span, skip),
                    epochs=epoch + span,
                    initial_epoch=epoch,
                    steps_per_epoch=n_steps,
                    validation_data=val_ds,
                    class_weight=class_weight,
                    callbacks=callbacks,
                    shuffle=False,  # the stream is already shuffled, per epoch
                    verbose=0,
                )
                if recorder.interrupted:
                    raise RunInterrupted(recorder.interrupted)
                if epoch + span < epochs and not state.get("stopped_early"):
                    # fit() ends by copying the EMA weights into the model; the next segment
                    # must go on from the raw weights, which the checkpoint just saved holds.
                    Checkpoints.restore(model, checkpoints.latest())
        if patience is not None and checkpoints.best() is not None:
            restore_network(model, checkpoints.best())
            print(
                f"best weights restored: epoch {state['best']['epoch']}, "
                f"val accuracy {state['best']['value']:.4f}",
                file=stream,
            )

        return _finish(
            c,
            run_dir,
            out_dir,
            model,
            inputs,
            state,
            eval_data,
            bad_log,
            bad,
            chief,
            started,
            stream,
        )


def _finish(
    c, run_dir, out_dir, model, inputs, state, eval_data, bad_log, bad, chief, started, stream
):
    """Test evaluation, model.keras and summary.json.

    Keras' fit() has already copied the EMA weights (optim.ema_decay) into the model.
    """
    test = {}
    split = inputs.source.splits.get("test")
    if split is not None and len(split):
        results = model.evaluate(eval_data(split), verbose=0, return_dict=True)
        test = {f"test_{k}": float(v) for k, v in results.items()}
        if c.run.tta:
            from resnetkit.tasks.classify.predict import predict_dataset, tta_metrics

            plain = {f"{k}_no_tta": v for k, v in test.items()}
            flipped = tta_metrics(*predict_dataset(model, eval_data(split), tta=True))
            test = {**{f"test_{k}": v for k, v in flipped.items()}, **plain}
    history = state["history"]
    summary = {
        "model": c.model.name,
        "data": c.data.source,
        "run_dir": str(run_dir),
        "epochs": len(history),
        "best": state.get("best"),
        "final": history[-1] if history else None,
        **test,
        "train_seconds": state["train_seconds"],
        "session_wall_seconds": time.perf_counter() - started,
        "images_per_second": float(np.median([r["images_per_second"] for r in history]))
        if history
        else None,
        "versions": versions(),
    }
    late = [b for b in bad_log.items if b.path not in {x.path for x in bad}]
    if late:  # files whose damage only decoding showed
        report = out_dir / "bad_images.csv"
        apply_bad_image_policy(bad + late, "skip", report=report)
        print(f"bad images: {len(late)} more found while decoding; listed in {report}", file=stream)
    _save_model(model, out_dir / "model.keras")
    summary["data_summary"] = {
        "classes": inputs.source.class_names,
        "counts": {
            k: v.counts(inputs.source.num_classes)
            for k, v in inputs.source.splits.items()
            if len(v)
        },
        "bad_files": len(bad) + len(late),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    if not chief:
        return summary
    if test:
        print(
            f"test accuracy {test['test_accuracy']:.4f}"
            + (f" (flip TTA; {test['test_accuracy_no_tta']:.4f} without)" if c.run.tta else ""),
            file=stream,
        )
    if c.run.report:
        _evaluate_and_report(c, out_dir, model, inputs, stream)
    print(f"run directory: {run_dir}", file=stream)
    return summary


def _fit_to_budget(c: Config, inputs: Inputs, strategy, started: float, stream) -> Config:
    """``schedule.budget_minutes``: measure a throwaway copy of the network on real batches
    and cut ``schedule.epochs`` (warm-up in proportion) to what fits; see budget.py."""
    from resnetkit.models import create_model
    from resnetkit.training import budget

    if strategy.num_replicas_in_sync > 1:
        raise ValueError("schedule.budget_minutes needs a single device (workers could disagree)")
    s = c.schedule
    if s.budget_minutes <= 0:
        raise ValueError(f"schedule.budget_minutes must be positive; got {s.budget_minutes}")
    source, batch = inputs.source, c.data.batch_size
    one_hot = bool(c.augment.mixup or c.augment.cutmix or c.optim.label_smoothing)
    probe = create_model(
        inputs.pretrained.arch if inputs.pretrained is not None else c.model.name,
        num_classes=c.model.num_classes or source.num_classes,
        input_shape=inputs.input_shape,
        classifier_activation="softmax",
        dtype=None if c.run.precision == "float32" else c.run.precision,
    )
    probe.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
        loss=_loss(one_hot, c.optim.label_smoothing),
        metrics=_metrics(one_hot, source.num_classes),
        jit_compile=c.run.jit_compile,
    )
    take = min(11, len(source.splits["train"]) // batch)
    data = build_dataset(
        source.splits["train"].subset(np.arange(min(len(source.splits["train"]), take * batch))),
        inputs.prep,
        channels=inputs.channels,
        batch_size=batch,
        training=True,
        augment=c.augment,
        num_classes=source.num_classes,
        seed=c.run.seed,
        cache="memory",
        drop_remainder=True,
    )
    rate = budget.measure_rate(probe, _as_one_hot(data, one_hot, source.num_classes), batch)
    del probe
    keras.utils.set_random_seed(c.run.seed)  # the real model starts as without the probe
    sizes = {k: len(v) for k, v in source.splits.items()}
    p = budget.plan(
        s.budget_minutes * 60,
        time.perf_counter() - started,
        rate,
        train_images=(len(source.splits["train"]) // batch) * batch,
        val_images=sizes.get("val", 0),
        test_images=sizes.get("test", 0) or sizes.get("val", 0),
        # model.evaluate, the flip-TTA figures, the report's evaluation (see _finish)
        test_passes=1 + (2 if c.run.tta else 0) + ((2 if c.run.tta else 1) if c.run.report else 0),
        max_epochs=s.epochs,
    )
    print(
        f"time budget {s.budget_minutes:g} min: {rate:,.0f} images/s measured, "
        f"~{p.epoch_seconds:.0f} s per epoch -> {p.epochs} of {s.epochs} epochs",
        file=stream,
    )
    # config.yaml keeps the resolved schedule, not the budget: a resume or rerun from it
    # trains exactly these epochs.
    warmup = s.warmup_epochs * p.epochs / s.epochs
    return replace(
        c, schedule=replace(s, epochs=p.epochs, warmup_epochs=warmup, budget_minutes=None)
    )


def _evaluate_and_report(c: Config, out_dir: Path, model, inputs: Inputs, stream) -> None:
    """evaluation/SPLIT/ (metrics, charts; the test split, else validation) and report.html.

    Both are derived from the saved run: a failure here is reported, not fatal, and
    ``resnetkit evaluate``/``resnetkit report`` can redo them.
    """
    from resnetkit.report import write_report
    from resnetkit.tasks.classify.evaluation import evaluate_split, write_evaluation

    splits = inputs.source.splits
    name = next((s for s in ("test", "val") if len(splits.get(s) or ())), None)
    try:
        if name is not None:
            ev = evaluate_split(
                model,
                splits[name],
                inputs.source.class_names,
                inputs.prep,
                batch_size=c.data.batch_size,
                tta=c.run.tta,
            )
            ev.metrics.update({"data": c.data.source, "split": name})
            write_evaluation(ev, out_dir / "evaluation" / name, title=f"{name} split")
        print(f"report: {write_report(out_dir)}", file=stream)
    except Exception as e:  # the trained model is saved: say what failed, do not lose it
        print(
            f"warning: evaluation/report failed ({type(e).__name__}: {e}); "
            f"rerun with `resnetkit report {out_dir}`",
            file=stream,
        )


def _check_config(c: Config) -> None:
    if c.run.precision not in PRECISIONS:
        raise ValueError(
            f"run.precision must be one of {', '.join(PRECISIONS)}; got {c.run.precision!r}"
        )
    if c.data.batch_size < 1:
        raise ValueError(f"data.batch_size must be positive; got {c.data.batch_size}")
    if c.schedule.epochs < 1:
        raise ValueError(f"schedule.epochs must be positive; got {c.schedule.epochs}")


def _prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite another run; fail now, not at the first save, if unwritable."""
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"run directory {run_dir} already holds a run; resume it with "
            f"`resnetkit train --resume {run_dir}` or choose another --run-dir"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"run directory {run_dir} is not writable: {e.strerror or e}") from e


def resolve_inputs(c: Config) -> Inputs:
    """Load the data and decide input size, channels and preprocessing."""
    source = load_data(
        c.data.source,
        val_fraction=c.data.val_fraction,
        seed=c.run.seed,
        max_pixels=c.data.max_pixels,
    )
    if c.data.train_subset is not None:
        source = _train_subset(source, c.data.train_subset, c.run.seed)
    source.validate()
    train = source.splits["train"]
    weights = c.model.weights
    pretrained = None
    if c.finetune.source:
        if weights is not None:
            raise ValueError("set finetune.source or model.weights, not both")
        pretrained = resolve_source(c.finetune.source, c.model.name)
        base, size = pretrained.prep, pretrained.prep.crop_size
        # Grey arrays stay grey: the first convolution is adapted to the data's channels.
        channels = train.arrays.shape[-1] if train.arrays is not None else pretrained.channels
    elif weights is not None and weights in REGISTRY:
        base = REGISTRY[weights].preprocessing
        size, channels = base.crop_size, 3
    elif train.arrays is not None:
        size, channels = train.arrays.shape[1], train.arrays.shape[-1]
        sample = train.arrays[:: max(1, len(train) // 10_000)].astype(np.float32) / 255.0
        mean = sample.mean(axis=(0, 1, 2))
        std = sample.std(axis=(0, 1, 2))
        base = Preprocessing(
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
            crop_size=size,
            resize_size=size,
        )
    else:
        base, size, channels = Preprocessing(), 224, 3
    if c.model.input_size is not None:
        if len(c.model.input_size) != 3 or c.model.input_size[0] != c.model.input_size[1]:
            raise ValueError(
                f"model.input_size must be [size, size, channels]; got {c.model.input_size}"
            )
        size, _, channels = c.model.input_size
    resize = max(size, round(size * base.resize_size / base.crop_size))
    prep = Preprocessing(**{**base.to_dict(), "crop_size": size, "resize_size": resize})
    return Inputs(source, prep, (size, size, channels), pretrained)


def _train_subset(source: DataSource, n: int, seed: int) -> DataSource:
    """``data.train_subset``: ``n`` training images, per class in proportion (seeded)."""
    if n < 1:
        raise ValueError(f"data.train_subset must be positive; got {n}")
    subset = stratified_subset(source.splits["train"], n, seed)
    return replace(source, splits={**source.splits, "train": subset})


def stratified_subset(images: ImageSet, n: int, seed: int) -> ImageSet:
    """Exactly ``min(n, len(images))`` images, each class in proportion (largest
    remainders round), drawn with a seeded shuffle; in the original order."""
    if n >= len(images):
        return images
    classes, counts = np.unique(images.labels, return_counts=True)
    quota = counts * n / len(images)
    take = np.floor(quota).astype(np.int64)
    take[np.argsort(take - quota, kind="stable")[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.permutation(np.flatnonzero(images.labels == c))[:k]
        for c, k in zip(classes, take, strict=True)
    ]
    return images.subset(np.sort(np.concatenate(picked)))


def build_model(c: Config, inputs: Inputs, stream=None) -> keras.Model:
    """The model to train; fine-tuning: the source's architecture and weights, a new head."""
    from resnetkit.models import create_model
    from resnetkit.models.variants import get_variant

    pretrained = inputs.pretrained
    name = pretrained.arch if pretrained is not None else c.model.name
    has_shortcuts = get_variant(name).shortcut != "none"
    model = create_model(
        name,
        weights=c.model.weights if pretrained is None else None,
        num_classes=c.model.num_classes or inputs.source.num_classes,
        input_shape=inputs.input_shape,
        zero_init_residual=c.model.zero_init_residual and has_shortcuts and pretrained is None,
        drop_path_rate=c.model.drop_path_rate,
        classifier_activation="softmax",
        dtype=None if c.run.precision == "float32" else c.run.precision,
        preprocessing=inputs.prep.to_dict(),
    )
    if pretrained is not None:
        report = load_source(model, pretrained)
        print(
            f"fine-tuning from {pretrained.description}: {report.assigned} weights loaded"
            + "".join(f"; {n}" for n in report.notes),
            file=stream or sys.stdout,
        )
    return model


def _class_weight(mode: str | None, labels: np.ndarray, num_classes: int) -> dict | None:
    """``"auto"``: class ``k`` weighs ``n / (classes × count_k)`` (balanced on average)."""
    if mode is None:
        return None
    if mode != "auto":
        raise ValueError(f"data.class_weight must be auto or null; got {mode!r}")
    counts = np.bincount(labels, minlength=num_classes)
    return {k: float(len(labels) / (num_classes * max(n, 1))) for k, n in enumerate(counts)}


def _scan_all(source: DataSource, max_pixels: int) -> list:
    paths = [p for s in source.splits.values() if s.paths is not None for p in s.paths]
    return scan_images(paths, max_pixels) if paths else []


def _loss(one_hot: bool, label_smoothing: float):
    if one_hot:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def _metrics(one_hot: bool, num_classes: int) -> list:
    if one_hot:
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        top5 = keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        top5 = keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy")
    return metrics + ([top5] if num_classes > 5 else [])


def _as_one_hot(ds: tf.data.Dataset, one_hot: bool, num_classes: int) -> tf.data.Dataset:
    if not one_hot or ds.element_spec[1].shape.rank == 2:
        return ds
    return ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)))


def _distributable(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by element across workers (there are no input files to shard by)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _save_model(model: keras.Model, path: Path) -> None:
    """The trained network alone (no optimizer or loss): it loads wherever resnetkit is
    installed, without the training code's schedules."""
    plain = type(model).from_config(model.get_config())
    plain.set_weights(model.get_weights())
    tmp = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}.keras")
    try:
        plain.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
