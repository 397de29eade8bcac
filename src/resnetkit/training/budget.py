"""``schedule.budget_minutes``: train as many epochs as fit in a wall-clock budget.

A recipe such as "ResNet-20 on Fashion-MNIST in 10 minutes" must hold on machines of
different speed (the same 2-core machine kind came with and without native bfloat16 here,
a 2× difference). Before training, a throwaway copy of the network runs a few steps on
real batches; from the measured rate the run's ``schedule.epochs`` (and warm-up, in
proportion) is cut to what fits, leaving time for the final evaluation. The result is
written into the run's ``config.yaml``, so that a resume or a rerun from it trains the
same schedule without measuring again: the schedule stays a function of the step, and
exact resume is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import tensorflow as tf

# Share of the budget held back for noise. In the first measured run fit() ran 12% slower
# than the probe's steps (240 against 272 images/s); the probe now computes the run's
# metrics too, which fit() does every step.
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
    (which include tracing), at least ``timed`` steps and ``min_seconds`` of them. Eight
    steps of resnet8_fast take 0.2 s, too short a sample on a shared machine."""
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
