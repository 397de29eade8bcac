"""``train(config, run_dir)``: one typed config in, one complete run directory out.

The engine knows no task: the task (``tasks/``, chosen by the config) loads the data, builds
the network, names the loss and metrics, and evaluates at the end. The engine owns the run
directory (``RunDir``), the phases, checkpoints and exact resume, the time budget, progress
and the summary. Fine-tuning is this engine with ``start`` set (``resnetkit.transfer``).

Training is Keras ``fit`` inside a tf.distribute strategy scope. Exact resume rests on two
things: checkpoints hold the optimizer state and the position in the data stream
(``RunState``), and the training stream's order and augmentation are a function of
(seed, epoch) alone (``build_dataset``), so the batches after a resume are those an
uninterrupted run would see.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data.checks import apply_bad_image_policy, scan_images
from resnetkit.files import atomic_path, write_atomic
from resnetkit.rundir import RunDir
from resnetkit.tasks import get_task, model_for_source, resolve_task
from resnetkit.tasks.base import Task
from resnetkit.training import budget, rules
from resnetkit.training.callbacks import NanGuard, Progress, RunRecorder, StopSignals
from resnetkit.training.checkpoint import Checkpoints, restore_network
from resnetkit.training.config import Config, load_config, save_config
from resnetkit.training.distribute import is_chief, make_strategy, unscoped_build
from resnetkit.training.fit import Streams, current_phase, fit_phases
from resnetkit.training.hardware import resolve_precision, slow_precision_warning
from resnetkit.training.optim import make_optimizer
from resnetkit.training.phases import Phase, lr_scale, plan_phases, set_trainable, stage_names
from resnetkit.training.state import RunState
from resnetkit.versions import versions

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass
class Session:
    """One call of ``train``: where it writes, on which devices, since when."""

    config: Config
    run: RunDir  # the run directory the user named
    out: RunDir  # where this process writes: ``run`` on the chief, a temporary folder else
    resume: bool
    strategy: Any
    chief: bool
    started: float
    stream: Any
    callbacks: list = field(default_factory=list)
    start: Any = None  # fine-tuning: the weights to start from (transfer.Source)
    decisions: list[str] = field(default_factory=list)  # the defaults decided, as printed


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
    start=None,
) -> dict:
    """Train per ``config`` into ``run_dir`` (or resume the run there); return the summary.

    ``callbacks``: extra Keras callbacks, called before resnetkit's own, so that metrics
    they add to an epoch's ``logs`` are recorded in metrics.jsonl/csv. ``start``: weights to
    fine-tune from (``resnetkit.transfer.finetune`` resolves ``finetune.source`` into it).

    Raises ``RunInterrupted`` after SIGTERM/SIGINT (a checkpoint was saved),
    ``TrainingDiverged`` on a NaN/inf loss, ``CheckpointError`` when the run directory
    cannot be written.
    """
    started = time.perf_counter()
    stream = stream or sys.stdout
    config, run = _resolve_config(config, run_dir, resume)
    if config.finetune.source and start is None:
        raise ValueError(
            f"{run}: fine-tuning from {config.finetune.source!r} runs through "
            "resnetkit.transfer.finetune(config, run_dir) (CLI: resnetkit finetune)"
        )
    warning = slow_precision_warning(config.run.precision)
    if warning:
        print(warning, file=stream)
    strategy = make_strategy(config.run.strategy)  # first: multi-worker set-up precedes all ops
    # Every worker runs the same code, saves included (reading synchronized variables is a
    # collective op); only the chief writes into run_dir, the others into a temporary folder.
    chief = is_chief(strategy)
    out = run if chief else RunDir(tempfile.mkdtemp(prefix="resnetkit-worker-"))
    created = not out.path.exists()
    _prepare_run_dir(out, resume and chief)
    session = Session(config, run, out, resume, strategy, chief, started, stream, [*callbacks])
    session.start = start
    keras.utils.set_random_seed(config.run.seed)
    if config.run.deterministic:
        tf.config.experimental.enable_op_determinism()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.run.precision)
    try:
        with warnings.catch_warnings():
            # Keras warns whenever a dataset of unknown length ends (files: damaged ones are
            # dropped, so the length is not known); fit_phases checks the training stream.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            return _train(session)
    except BaseException:
        if created and not out.is_run():  # failed before it began
            shutil.rmtree(out.path, ignore_errors=True)
        raise
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if not chief:
            shutil.rmtree(out.path, ignore_errors=True)


def _resolve_config(config: Config | None, run_dir, resume: bool) -> tuple[Config, RunDir]:
    """A resume reads the run's own config; a new run resolves ``run.precision``."""
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        run = RunDir(run_dir).require_run()
        config = load_config(run.config)
    else:
        config = config or Config()
        run = RunDir(run_dir if run_dir is not None else default_run_dir(config))
        precision = resolve_precision(config.run.precision)  # the saved config records the choice
        config = replace(config, run=replace(config.run, precision=precision))
        config = replace(config, task=resolve_task(config.task, config.model.name))
    _check_config(config)
    return config, run


def _train(s: Session) -> dict:
    task = get_task(s.config)
    inputs = task.load_inputs(s.start)
    c = s.config
    if s.start is not None:  # the saved config names the architecture used
        c = replace(c, model=replace(c.model, name=model_for_source(c.model.name, s.start.arch)))
    print(inputs.decision, file=s.stream)
    bad = _check_images(c, inputs.source, s.out, s.stream)
    c, s.decisions = rules.decide(c, task, inputs)
    for line in s.decisions:
        print(line, file=s.stream)
    task.config = c  # the task trains with what was decided
    if c.schedule.budget_minutes is not None and not s.resume:
        if s.strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "schedule.budget_minutes needs a single device (workers could disagree)"
            )
        c = budget.fit_to_budget(c, task, inputs, s.started, s.stream)
        task.config = c
    phases = _plan(c, inputs)  # planned (and checked) before anything is written
    save_config(c, s.out.config)
    task.write_targets(s.out, inputs)
    with s.strategy.scope():
        model = task.build_model(inputs, c.model.name)
    if s.start is not None:
        print(s.start.load(model), file=s.stream)
    state = _fit(s, c, task, inputs, model, phases)
    with s.strategy.scope():
        return _finish(s, c, task, inputs, model, state, bad)


def _check_images(c: Config, source, out: RunDir, stream) -> list:
    """Apply ``data.on_bad_image`` to the files indexing found bad (``error``: decode every
    file now, so nothing fails later); return the bad files."""
    bad = list(source.bad)
    if c.data.on_bad_image == "error":
        paths = [p for s in source.splits.values() if getattr(s, "paths", None) is not None
                 for p in s.paths]  # fmt: skip
        bad += scan_images(paths, c.data.max_pixels) if paths else []
    print(apply_bad_image_policy(bad, c.data.on_bad_image, report=out.bad_images), file=stream)
    return bad


def _plan(c: Config, inputs) -> list[Phase]:
    """One phase from scratch; the fine-tuning strategy's phases with a source."""
    epochs, names = c.schedule.epochs, stage_names(c.model.name)
    ft = c.finetune
    if not ft.source:
        return [Phase(0, epochs, tuple(names))]
    if ft.patience is not None and not len(inputs.source.splits.get("val") or ()):
        raise ValueError("finetune.patience needs validation data: set data.val_fraction > 0")
    return plan_phases(ft, epochs, names)


def _fit(s: Session, c: Config, task: Task, inputs, model, phases: list[Phase]) -> RunState:
    """Restore the last checkpoint (on resume), then fit every phase left."""
    ft = c.finetune if c.finetune.source else None
    batch = c.data.batch_size
    steps = c.schedule.passes_per_epoch * (len(inputs.source.splits["train"]) // batch)
    enter = _phase_compiler(s, c, task, model, steps)
    checkpoints = Checkpoints(s.out.checkpoints, keep=c.run.keep_checkpoints)
    state, latest = RunState(), None
    if s.resume:
        checkpoints.clean()
        latest = Checkpoints(s.run.checkpoints).latest()  # the chief's, for every worker
        if latest is not None:
            state = Checkpoints.read_state(latest)
    enter(phases[current_phase(phases, state)])
    if latest is not None:
        Checkpoints.restore(model, latest)
        print(f"resumed from {latest}", file=s.stream)
    val = inputs.source.splits.get("val")
    streams = Streams(
        train=lambda first, epochs, skip: task.train_stream(
            inputs, batch, first_epoch=first, epochs=epochs, skip=skip
        ),
        val=task.eval_stream(inputs, val, batch) if val is not None and len(val) else None,
        steps_per_epoch=steps,
        class_weight=task.class_weight(inputs),
    )
    patience = ft.patience if ft else None
    with StopSignals() as signals, s.strategy.scope():
        recorder = RunRecorder(
            s.out,
            checkpoints,
            state,
            steps_per_epoch=steps,
            batch_size=batch,
            monitor=task.monitor if streams.val is not None else None,
            signals=signals,
            patience=patience,
            patience_from=phases[-1].first,
        )
        guard = NanGuard(steps, c.run.precision)
        progress = Progress(c.schedule.epochs, steps, batch, s.stream)
        positioned = [guard, progress, recorder]  # they need the step offset of a resume
        callbacks = [
            *([keras.callbacks.SwapEMAWeights()] if c.optim.ema_decay is not None else []),
            *s.callbacks,
            *positioned,
            keras.callbacks.TensorBoard(str(s.out.tensorboard), write_graph=False, profile_batch=0),
        ]
        fit_phases(model, phases, streams, state=state, enter=enter, recorder=recorder,
                   callbacks=callbacks, positioned=positioned, checkpoints=checkpoints)  # fmt: skip
        restore = ft is not None and (patience is not None or ft.restore_best)
        if restore and streams.val is not None and checkpoints.best() is not None:
            restore_network(model, checkpoints.best())
            print(
                f"best weights restored: epoch {state.best.epoch}, "
                f"{state.best.metric} {state.best.value:.4f}",
                file=s.stream,
            )
    return state


def _phase_compiler(s: Session, c: Config, task: Task, model, steps: int):
    """``enter(phase)``: set the phase's trainable layers and compile with a fresh optimizer
    (fine-tuning: layer-wise rates, the phase's own schedule)."""
    ft = c.finetune if c.finetune.source else None
    scale = lr_scale(model, ft.lr_decay, ft.head_lr_mult) if ft else None

    def enter(phase: Phase) -> None:
        schedule = c.schedule
        if ft:
            set_trainable(model, phase.trainable, ft.bn_policy)
            warmup = min(schedule.warmup_epochs, phase.epochs / 2)
            schedule = replace(schedule, epochs=phase.epochs, warmup_epochs=warmup)
        with s.strategy.scope():
            optimizer = make_optimizer(
                c.optim,
                schedule,
                batch_size=c.data.batch_size,
                steps_per_epoch=steps,
                variables=model.trainable_variables,
                lr_scale=scale,
            )
            model.compile(
                optimizer=optimizer,
                loss=task.loss(),
                metrics=task.metrics(),
                jit_compile=c.run.jit_compile,
            )
        unscoped_build(model, s.strategy)  # fit() and evaluate() run inside the scope below

    return enter


def _finish(s: Session, c: Config, task: Task, inputs, model, state: RunState, bad: list) -> dict:
    """Test figures, the saved model and the summary; then the evaluation and report."""
    test = task.test_metrics(model, inputs, c.data.batch_size)
    history = state.history
    late = [b for b in task.bad_log.items if b.path not in {x.path for x in bad}]
    if late:  # files whose damage only decoding showed
        apply_bad_image_policy(bad + late, "skip", report=s.out.bad_images)
        print(
            f"bad images: {len(late)} more found while decoding; listed in {s.out.bad_images}",
            file=s.stream,
        )
    save_model(model, s.out.model)
    rates = [r["images_per_second"] for r in history]
    summary = {
        "task": task.name,
        "model": c.model.name,
        "data": c.data.source,
        "run_dir": str(s.run),
        "epochs": len(history),
        "best": None if state.best is None else vars(state.best),
        "final": history[-1] if history else None,
        **test,
        "train_seconds": state.train_seconds,
        "session_wall_seconds": time.perf_counter() - s.started,
        "images_per_second": float(np.median(rates)) if rates else None,
        "inputs": inputs.record(),
        "decisions": s.decisions,
        "versions": versions(),
        "data_summary": task.data_summary(inputs, len(bad) + len(late)),
    }
    write_atomic(s.out.summary, json.dumps(summary, indent=1))
    if not s.chief:
        return summary
    line = task.describe_test(test)
    if line:
        print(line, file=s.stream)
    if c.run.report:
        _evaluate_and_report(s, task, inputs, model, c.data.batch_size)
    print(f"run directory: {s.run}", file=s.stream)
    return summary


def _evaluate_and_report(s: Session, task: Task, inputs, model, batch_size: int) -> None:
    """evaluation/SPLIT/ (the task's) and report.html.

    Both are derived from the saved run: a failure here is reported, not fatal, and
    ``resnetkit evaluate``/``resnetkit report`` can redo them.
    """
    from resnetkit.report import write_report

    try:
        line = task.evaluate(model, inputs, s.out, batch_size)
        if line:
            print(line, file=s.stream)
        print(f"report: {write_report(s.out.path)}", file=s.stream)
    except Exception as e:  # the trained model is saved: say what failed, do not lose it
        print(
            f"warning: evaluation/report failed ({type(e).__name__}: {e}); "
            f"rerun with `resnetkit report {s.out}`",
            file=s.stream,
        )


def _check_config(c: Config) -> None:
    if c.run.precision not in PRECISIONS:
        raise ValueError(
            f"run.precision must be one of {', '.join(PRECISIONS)}; got {c.run.precision!r}"
        )
    if c.data.batch_size is not None and c.data.batch_size < 1:
        raise ValueError(f"data.batch_size must be positive; got {c.data.batch_size}")


def _prepare_run_dir(run: RunDir | Path, resume: bool) -> None:
    """Refuse to overwrite another run; fail now, not at the first save, if unwritable."""
    path = Path(run)
    if not resume and path.exists() and any(path.iterdir()):
        raise FileExistsError(
            f"run directory {path} already holds a run; resume it with "
            f"`resnetkit train --resume {path}` or choose another --run-dir"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"run directory {path} is not writable: {e.strerror or e}") from e


def save_model(model: keras.Model, path: Path) -> None:
    """The trained network alone (no optimizer or loss), atomically: it loads wherever
    resnetkit is installed, without the training code's schedules."""
    plain = type(model).from_config(model.get_config())
    plain.set_weights(model.get_weights())
    with atomic_path(path, suffix=".keras") as tmp:
        plain.save(tmp)
