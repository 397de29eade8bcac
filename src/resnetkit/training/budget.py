"""``schedule.budget_minutes``: train as many epochs as fit in a wall-clock budget.

A recipe such as "ResNet-20 on Fashion-MNIST in 10 minutes" must hold on machines of
different speed (the same 2-core machine kind comes with and without native bfloat16).
Before training, a throwaway copy of the network runs a few steps on
real batches; from the measured rate the run's ``schedule.epochs`` (and warm-up, in
proportion) is cut to what fits, leaving time for the final evaluation. The result is
written into the run's saved config (``RunDir.config``), so that a resume or a rerun from
it trains the same schedule without measuring again: the schedule stays a function of the
step, and exact resume is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from resnetkit.tasks.base import Task

# Share of the budget held back for noise: fit() runs somewhat slower than the probe's bare
# steps on a shared machine, even though the probe computes the run's metrics too.
SAFETY = 0.08
FIXED_SECONDS = 10.0  # model saving, charts and report.html at the end


@dataclass(frozen=True)
class BudgetPlan:
    epochs: int
    images_per_second: float
    epoch_seconds: float
    reserved_seconds: float  # final evaluation + fixed costs


def measure_rate(
    model,
    ds: tf.data.Dataset,
    batch_size: int,
    warmup: int = 3,
    timed: int = 8,
    min_seconds: float = 3.0,
) -> float:
    """Training images per second of a compiled ``model`` on ``ds``: after ``warmup`` steps
    (which include tracing), at least ``timed`` steps and ``min_seconds`` of them: a few
    steps of a small network are too short a sample on a shared machine."""
    it = iter(ds.repeat())
    for _ in range(warmup):
        model.train_on_batch(*next(it))
    steps, start = 0, time.perf_counter()
    while steps < timed or time.perf_counter() - start < min_seconds:
        model.train_on_batch(*next(it))
        steps += 1
    return steps * batch_size / (time.perf_counter() - start)


def plan(
    budget_seconds: float,
    elapsed_seconds: float,
    rate: float,
    *,
    train_images: int,
    val_images: int,
    test_images: int,
    test_passes: int,
    max_epochs: int,
) -> BudgetPlan:
    """How many epochs fit. A forward pass costs about a third of a training step, so an
    image evaluated costs ``1 / (3 rate)`` seconds."""
    forward = 1.0 / (3.0 * rate)
    epoch = train_images / rate + val_images * forward
    reserved = test_images * test_passes * forward + FIXED_SECONDS
    available = budget_seconds * (1 - SAFETY) - elapsed_seconds - reserved
    epochs = max(1, min(max_epochs, math.floor(available / epoch)))
    return BudgetPlan(epochs, rate, epoch, reserved)


def fit_to_budget(config, task: Task, inputs, started: float, stream):
    """``schedule.budget_minutes``: measure a throwaway copy of the network on real batches
    (built by the run's own ``task``, as the run will build it) and return ``config`` with
    ``schedule.epochs`` (warm-up in proportion) cut to what fits.

    The returned config keeps the resolved schedule, not the budget: a resume or rerun from
    its saved config trains exactly these epochs.
    """
    c, s = config, config.schedule
    if s.budget_minutes <= 0:
        raise ValueError(f"schedule.budget_minutes must be positive; got {s.budget_minutes}")
    train, batch = inputs.source.splits["train"], c.data.batch_size
    probe = task.build_model(inputs, c.model.name, weights=False)
    probe.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
        loss=task.loss(),
        metrics=task.metrics(),
        jit_compile=c.run.jit_compile,
    )
    take = min(11, len(train) // batch)
    sample = train.subset(np.arange(min(len(train), take * batch)))
    rate = measure_rate(probe, task.train_stream(inputs, batch, images=sample), batch)
    del probe
    keras.utils.set_random_seed(c.run.seed)  # the real model starts as without the probe
    sizes = {k: len(v) for k, v in inputs.source.splits.items()}
    p = plan(
        s.budget_minutes * 60,
        time.perf_counter() - started,
        rate,
        train_images=(len(train) // batch) * batch * (s.passes_per_epoch or 1),
        val_images=sizes.get("val", 0),
        test_images=sizes.get("test", 0) or sizes.get("val", 0),
        # model.evaluate, the flip-TTA figures, the report's evaluation
        test_passes=1 + (2 if c.run.tta else 0) + ((2 if c.run.tta else 1) if c.run.report else 0),
        max_epochs=s.epochs,
    )
    print(
        f"time budget {s.budget_minutes:g} min: {rate:,.0f} images/s measured, "
        f"~{p.epoch_seconds:.0f} s per epoch -> {p.epochs} of {s.epochs} epochs",
        file=stream,
    )
    warmup = s.warmup_epochs * p.epochs / s.epochs
    schedule = replace(s, epochs=p.epochs, warmup_epochs=warmup, budget_minutes=None)
    return replace(c, schedule=schedule)
