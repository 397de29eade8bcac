"""The Keras callbacks of ``resnetkit train``: run records, faults, progress.

Keras' own callbacks are used where they fit (TensorBoard, SwapEMAWeights, EarlyStopping).
Written here, because Keras' versions do not do it: checkpoints that are atomic and carry the
position in the data stream (``RunRecorder``), metrics files that stay consistent with the
last checkpoint after a resume (CSVLogger appends duplicates), a NaN stop that names the step
and keeps the checkpoints (``NanGuard``), a clean stop on SIGTERM/SIGINT, and a progress line
with learning rate and images/second.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import signal
import sys
import time

import keras

from resnetkit.files import write_atomic
from resnetkit.rundir import RunDir
from resnetkit.training.checkpoint import Checkpoints
from resnetkit.training.state import RunState


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class RunInterrupted(Exception):
    """SIGTERM/SIGINT stopped the run after a checkpoint was saved."""


def current_lr(model: keras.Model) -> float:
    opt = model.optimizer
    opt = getattr(opt, "inner_optimizer", opt)  # a LossScaleOptimizer wraps the real one
    return float(keras.ops.convert_to_numpy(opt.learning_rate))


class StopSignals:
    """SIGTERM/SIGINT set a flag instead of killing the process (a context manager)."""

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class NanGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss, naming the step; checkpoints stay as they were."""

    def __init__(self, steps_per_epoch: int, precision: str):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.precision = precision
        self.epoch = 0
        self.offset = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = self.epoch * self.steps_per_epoch + self.offset + batch + 1
            hint = "lower optim.lr (or set optim.clipnorm)"
            if self.precision != "float32":
                hint += ", or train with run.precision=float32"
            raise TrainingDiverged(
                f"loss became {float(loss)} at step {step} (epoch {self.epoch + 1}, batch "
                f"{self.offset + batch + 1}); training stopped and the checkpoints written so "
                f"far are kept. Try: {hint}."
            )


class RunRecorder(keras.callbacks.Callback):
    """After every epoch: an atomic checkpoint and metrics.csv/jsonl; curves.png at most
    every ``PLOT_SECONDS`` and when training ends (drawing it every epoch was a large share
    of short runs on small data sets).

    ``state`` is the run's progress (history, best metric, times); it is saved in every
    checkpoint, and the metrics files are rewritten from it, so that after a resume they
    hold exactly the epochs of the checkpoint the run resumed from.
    """

    PLOT_SECONDS = 20.0

    def __init__(
        self,
        run: RunDir,
        checkpoints: Checkpoints,
        state: RunState,
        *,
        steps_per_epoch: int,
        batch_size: int,
        monitor: str | None,
        signals: StopSignals | None = None,
        patience: int | None = None,
        patience_from: int = 0,
    ):
        super().__init__()
        self.patience = patience  # early stop: epochs without a better ``monitor``
        self.patience_from = patience_from  # ... counted from this epoch on
        self.run = run
        self.checkpoints = checkpoints
        self.state = state
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.monitor = monitor
        self.signals = signals
        self.offset = 0  # steps of the current epoch done before this fit() call
        self.interrupted: str | None = None
        self._plotted = -float("inf")

    def on_train_begin(self, logs=None):
        self._session_start = time.perf_counter()
        self._base_seconds = self.state.train_seconds

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_end = None

    def on_train_batch_end(self, batch, logs=None):
        self._train_end = time.perf_counter()
        if self.signals is not None and self.signals.received is not None:
            name = signal.Signals(self.signals.received).name
            epoch, step = len(self.state.history), self.offset + batch + 1
            if step < self.steps_per_epoch:  # save the position in the epoch and leave now
                self._save(epoch, step)
                raise RunInterrupted(f"{name} at epoch {epoch + 1}, step {step}")
            self.interrupted = f"{name} at the end of epoch {epoch + 1}"
            self.model.stop_training = True  # after this epoch's validation and checkpoint

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = (self._train_end or time.perf_counter()) - self._epoch_start
        steps = self.steps_per_epoch - self.offset
        record = {
            "epoch": epoch + 1,
            **{k: float(v) for k, v in logs.items()},
            "lr": current_lr(self.model),
            "images_per_second": steps * self.batch_size / max(seconds, 1e-9),
            "epoch_seconds": time.perf_counter() - self._epoch_start,
        }
        state = self.state
        state.history.append(record)
        state.train_seconds = self._base_seconds + (time.perf_counter() - self._session_start)
        improved = bool(self.monitor and self.monitor in record) and state.improve(
            self.monitor, record[self.monitor], epoch + 1
        )
        best = state.best
        if (
            self.patience is not None
            and best is not None
            and epoch + 1 - max(best.since, self.patience_from) >= self.patience
        ):
            state.stopped_early = epoch + 1  # saved with the checkpoint: a resume ends
            self.model.stop_training = True
        self._save(epoch + 1, 0, best=improved)
        self.offset = 0

    def _save(self, epochs_done: int, step: int, best: bool = False) -> None:
        self.state.epochs_done, self.state.step = epochs_done, step
        self.checkpoints.save(self.model, self.state)
        if best:
            self.checkpoints.save(self.model, self.state, best=True)
        plot = time.perf_counter() - self._plotted >= self.PLOT_SECONDS
        write_metrics(self.run, self.state.history, plot=plot)
        if plot:
            self._plotted = time.perf_counter()

    def on_train_end(self, logs=None):
        write_metrics(self.run, self.state.history)


def write_metrics(run: RunDir, history: list[dict], plot: bool = True) -> None:
    """metrics.csv, metrics.jsonl and (``plot``) curves.png from the per-epoch history."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_atomic(run.metrics_csv, text.getvalue())
    write_atomic(run.metrics_jsonl, "".join(json.dumps(r) + "\n" for r in history))
    if history and plot:
        from resnetkit.plots import training_curves

        training_curves(history, run.curves)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress(keras.callbacks.Callback):
    """A live line per step on a terminal; one clean line per epoch otherwise (CI logs)."""

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, stream=None):
        super().__init__()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.offset = 0
        self._last_draw = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._start = time.perf_counter()
        self._first_step_end = None

    def _rate(self, steps_done: int) -> float:
        now = time.perf_counter()
        if self._first_step_end is None or steps_done <= 1:
            return 0.0  # the first step includes tracing: not a speed
        return (steps_done - 1) * self.batch_size / max(now - self._first_step_end, 1e-9)

    def on_train_batch_end(self, batch, logs=None):
        if self._first_step_end is None:
            self._first_step_end = time.perf_counter()
        if not self.live or time.perf_counter() - self._last_draw < 0.25:
            return
        self._last_draw = time.perf_counter()
        done = batch + 1
        step = self.offset + done
        rate = self._rate(done)
        left = (self.steps_per_epoch - step) + (self.epochs - self.epoch - 1) * self.steps_per_epoch
        eta = _fmt_time(left * self.batch_size / rate) if rate else "?"
        bar = "=" * int(20 * step / self.steps_per_epoch)
        self.stream.write(
            f"\repoch {self.epoch + 1}/{self.epochs} {step}/{self.steps_per_epoch} "
            f"[{bar:<20}] {_metrics(logs)} lr {current_lr(self.model):.4g} "
            f"{rate:,.0f} img/s ETA {eta}   "
        )
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        steps = self.steps_per_epoch - self.offset
        rate = steps * self.batch_size / max(seconds, 1e-9)
        eta = (self.epochs - epoch - 1) * self.steps_per_epoch * self.batch_size / rate
        prefix = "\r" if self.live else ""
        self.stream.write(
            f"{prefix}epoch {epoch + 1}/{self.epochs}  {_metrics(logs)}  "
            f"lr {current_lr(self.model):.4g}  {rate:,.0f} img/s  {seconds:.1f} s  "
            f"ETA {_fmt_time(eta)}" + " " * 10 + "\n"
        )
        self.stream.flush()
        self.offset = 0


def _metrics(logs: dict | None) -> str:
    shown = []
    for k, v in (logs or {}).items():
        if k.endswith("loss") or "accuracy" in k or k.endswith("miou"):
            shown.append(f"{k.replace('accuracy', 'acc')} {float(v):.4f}")
    return "  ".join(shown)
