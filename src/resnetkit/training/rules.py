"""Defaults that depend on the data: how long to train, the batch, and the learning rate.

A config that leaves ``schedule.epochs``/``schedule.steps`` or ``data.batch_size`` unset
(the defaults) gets them from the training split's size, so that a folder of 50 images
trains as carefully as Fashion-MNIST does:

- **Length in steps** (``STEP_RULE``), BiT's HyperRule (Kolesnikov et al. 2020, "Big
  Transfer"): fewer than 20,000 training images → 500 steps, up to 500,000 → 10,000 steps,
  more → 20,000. Training from scratch also makes at least ``SCRATCH_PASSES`` (30) passes
  over the split, resnetkit's default before the rule: a random network needs to see its
  data many times, a pretrained one needs steps.
- **Epochs of several passes**: when one pass over the split is shorter than
  ``MIN_EPOCH_STEPS`` (50) steps, an epoch is as many passes as make 50 steps (each pass
  its own shuffle), so that a tiny split is not validated and checkpointed every few
  steps; the run's epochs are then the steps divided by the epoch's steps, rounded up.
- **Batch**: 128, at most a quarter of the split (``BATCH_FRACTION``), so that every pass
  has at least four optimizer steps.
- **Learning rate**: ``optim.lr`` is the rate at batch 128, scaled linearly with the batch
  (Goyal et al. 2017), but never below its value at batch ``LR_FLOOR_BATCH`` (32): linear
  scaling to a batch of 11 would cut the rate twelvefold, and a few hundred steps at that
  rate barely move a new head.
- **Fine-tuning's BatchNorm** (``finetune.bn_policy=auto``): the trained stages' BatchNorm
  layers learn the new images' statistics when the batch has at least ``BN_TRAIN_BATCH``
  (16) images, and keep the source's below that, where batch statistics are too noisy.
  A task that says ``frozen_batchnorm`` (detection: torchvision's FrozenBatchNorm2d) keeps
  them always.

Given ``--epochs`` (or ``--steps``), an epoch is one pass unless
``schedule.passes_per_epoch`` says otherwise. The run prints what it chose and why, and its
saved config records the epochs, passes and batch, so a resume or a rerun is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from resnetkit.data.augment import MIN_CROP_PIXELS, SMALL_IMAGE
from resnetkit.tasks import TASK_PRESET_REASONS, TASK_PRESETS

if TYPE_CHECKING:
    from resnetkit.tasks.base import Task
    from resnetkit.training.config import Config

STEP_RULE = ((20_000, 500), (500_000, 10_000))  # (fewer than N images, steps); else:
LARGE_STEPS = 20_000
SCRATCH_PASSES = 30
MIN_EPOCH_STEPS = 50
DEFAULT_BATCH = 128
BATCH_FRACTION = 4
REFERENCE_BATCH = 128  # ``optim.lr`` is the rate for this batch size
LR_FLOOR_BATCH = 32
BN_TRAIN_BATCH = 16  # fine-tuning: BatchNorm learns the new data's statistics from this batch


def rule_steps(train_images: int) -> int:
    """BiT-HyperRule's schedule length for a training split of ``train_images``."""
    for below, steps in STEP_RULE:
        if train_images < below:
            return steps
    return LARGE_STEPS


def default_batch(train_images: int) -> int:
    """128, at most a quarter of the split (at least 1)."""
    return max(1, min(DEFAULT_BATCH, train_images // BATCH_FRACTION))


def lr_factor(batch_size: int) -> float:
    """The factor on ``optim.lr``: linear in the batch, floored at ``LR_FLOOR_BATCH``."""
    return max(batch_size, LR_FLOOR_BATCH) / REFERENCE_BATCH


@dataclass(frozen=True)
class Length:
    """A run's length: ``epochs`` of ``passes`` passes, ``steps_per_pass`` steps each."""

    epochs: int
    passes: int
    steps_per_pass: int
    why: str

    @property
    def steps_per_epoch(self) -> int:
        return self.passes * self.steps_per_pass

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def describe(self, train_images: int, batch_size: int) -> str:
        passes = f"{self.passes} passes" if self.passes > 1 else "1 pass"
        return (
            f"schedule: {self.steps:,} steps = {self.epochs} epochs × {self.steps_per_epoch} "
            f"steps ({passes} over {train_images:,} images at batch {batch_size}; {self.why})"
        )


def run_length(
    train_images: int,
    batch_size: int,
    *,
    epochs: int | None,
    steps: int | None,
    passes: int | None,
    fine_tuning: bool,
) -> Length:
    """The epochs and passes per epoch a run trains, from what the config gives."""
    if epochs is not None and steps is not None:
        raise ValueError(
            f"set schedule.epochs or schedule.steps, not both (got {epochs} and {steps})"
        )
    for key, value in (("epochs", epochs), ("steps", steps), ("passes_per_epoch", passes)):
        if value is not None and value < 1:
            raise ValueError(f"schedule.{key} must be positive; got {value}")
    per_pass = max(1, train_images // batch_size)
    if epochs is not None:
        return Length(epochs, passes or 1, per_pass, "schedule.epochs")
    if steps is not None:
        target, why = steps, "schedule.steps"
    else:
        target = rule_steps(train_images)
        why = f"BiT-HyperRule: {target:,} steps for {_size_band(train_images)} images"
        if not fine_tuning and SCRATCH_PASSES * per_pass > target:
            target = SCRATCH_PASSES * per_pass
            why = f"from scratch: {SCRATCH_PASSES} passes, more than the rule's steps"
    # An epoch of at least MIN_EPOCH_STEPS, unless the run is shorter than that.
    passes = passes or max(1, math.ceil(min(MIN_EPOCH_STEPS, target) / per_pass))
    return Length(max(1, math.ceil(target / (passes * per_pass))), passes, per_pass, why)


def _size_band(train_images: int) -> str:
    below = [n for n, _ in STEP_RULE if train_images < n]
    if below:
        return f"fewer than {below[0]:,}"
    return f"{STEP_RULE[-1][0]:,} or more"


def rules_text() -> str:
    """The rules in a few lines, for ``--help`` and the docs."""
    bands = ", ".join(f"<{n:,} images: {s:,} steps" for n, s in STEP_RULE)
    return (
        f"Defaults from the data (resnetkit.training.rules): length {bands}, else "
        f"{LARGE_STEPS:,} (BiT-HyperRule, Kolesnikov et al. 2020), from scratch at least "
        f"{SCRATCH_PASSES} passes; an epoch is at least {MIN_EPOCH_STEPS} steps (several "
        f"passes over a small split); batch {DEFAULT_BATCH}, at most 1/{BATCH_FRACTION} of "
        f"the split; lr scaled linearly from batch {REFERENCE_BATCH} (Goyal et al. 2017), "
        f"never below its batch-{LR_FLOOR_BATCH} value; augmentation: pad-and-crop + flips "
        f"for images of at most {SMALL_IMAGE} px (CIFAR recipes), random-resized crops above "
        f"(smallest crop about {MIN_CROP_PIXELS}×{MIN_CROP_PIXELS} px); fine-tuning trains "
        f"BatchNorm from batch {BN_TRAIN_BATCH} up, keeps it frozen below. --epochs, --steps, "
        f"--batch-size and --set override any of them."
    )


def decide(c: Config, task: Task, inputs: Any) -> tuple[Config, list[str]]:
    """The batch, run length, learning rate and augmentation that ``c`` leaves to the data
    (these rules, the task's augmentation rule), and a line per decision with its reason.
    The returned config holds them all, so that its saved copy reruns the same run."""
    n = len(inputs.source.splits["train"])
    batch = c.data.batch_size
    if batch is None:
        batch = default_batch(n)
        why = (
            f"default {DEFAULT_BATCH}"
            if batch == DEFAULT_BATCH
            else (f"at most 1/{BATCH_FRACTION} of the {n:,} training images")
        )
        limit = getattr(inputs, "max_batch", None)  # a task's memory bound per batch
        if limit is not None and batch > limit:
            batch, why = limit, f"at most {limit} canvases of {inputs.image_side} px"
    elif batch > n:
        batch, why = n, f"data.batch_size={c.data.batch_size} is larger than the split"
    else:
        why = "data.batch_size"
    s = c.schedule
    length = run_length(
        n, batch, epochs=s.epochs, steps=s.steps, passes=s.passes_per_epoch,
        fine_tuning=bool(c.finetune.source),
    )  # fmt: skip
    augment, augment_line = task.augmentation(inputs)
    lr = c.optim.lr * lr_factor(batch)
    lines = [
        f"batch {batch} ({why}); learning rate {lr:.4g} (optim.lr {c.optim.lr:g} × "
        f"{max(batch, LR_FLOOR_BATCH)}/{REFERENCE_BATCH}: linear in the batch, "
        f"floored at batch {LR_FLOOR_BATCH})",
        length.describe(n, batch),
        augment_line,
    ]
    if c.task in TASK_PRESETS:
        lines.append(f"{c.task} defaults: {', '.join(TASK_PRESETS[c.task])} "
                     f"({TASK_PRESET_REASONS[c.task]}; --set overrides)")  # fmt: skip
    if s.steps is None and s.epochs is not None and length.steps < rule_steps(n):
        lines.insert(2, (
            f"note: {length.steps:,} steps is fewer than the {rule_steps(n):,} the step "
            f"rule gives {n:,} images; leave --epochs unset to train that long"
        ))  # fmt: skip
    ft = c.finetune
    if ft.source and ft.bn_policy == "auto" and ft.strategy == "linear":
        ft = replace(ft, bn_policy="frozen")  # a linear probe trains no BatchNorm layer
    elif ft.source and ft.bn_policy == "auto" and getattr(task, "frozen_batchnorm", False):
        lines.append(f"fine-tuning BatchNorm: frozen ({task.frozen_batchnorm}; "
                     "finetune.bn_policy=train overrides)")  # fmt: skip
        ft = replace(ft, bn_policy="frozen")
    elif ft.source and ft.bn_policy == "auto":
        policy = "train" if batch >= BN_TRAIN_BATCH else "frozen"
        lines.append(
            f"fine-tuning BatchNorm: {policy} (batch {batch} "
            + ("≥" if policy == "train" else "<")
            + f" {BN_TRAIN_BATCH}; finetune.bn_policy=auto)"
        )
        ft = replace(ft, bn_policy=policy)
    schedule = replace(s, epochs=length.epochs, steps=None, passes_per_epoch=length.passes)
    c = replace(c, data=replace(c.data, batch_size=batch), schedule=schedule, augment=augment,
                finetune=ft)  # fmt: skip
    return c, lines
