"""Optimizers and learning-rate schedules from the config, on Keras' own classes.

Keras provides SGD (with Nesterov momentum), AdamW and LAMB, decoupled weight decay,
gradient clipping and an EMA of the weights (``use_ema``); cosine decay with warmup and
piecewise-constant steps are Keras schedules too. Written here: the one-cycle schedule and
per-variable learning-rate multipliers (layer-wise decay for fine-tuning), which Keras lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import keras

from resnetkit.training.config import OptimConfig, ScheduleConfig
from resnetkit.training.rules import lr_factor


def peak_lr(optim: OptimConfig, batch_size: int) -> float:
    """``optim.lr`` scaled linearly from a batch of 128 to ``batch_size`` (Goyal et al.),
    never below its value at the floor batch (``rules.lr_factor``)."""
    return optim.lr * lr_factor(batch_size)


@keras.saving.register_keras_serializable(package="resnetkit")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's one-cycle: cosine ramp from peak/25 up to the peak, then cosine down to ~0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int, final_div: float = 1e4):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = max(1, int(warmup_steps))
        self.final_div = float(final_div)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        start, end = self.peak / 25.0, self.peak / self.final_div
        up = keras.ops.minimum(step / self.warmup_steps, 1.0)
        down_steps = max(1, self.total_steps - self.warmup_steps)
        down = keras.ops.clip((step - self.warmup_steps) / down_steps, 0.0, 1.0)
        rising = _cosine(start, self.peak, up)
        falling = _cosine(self.peak, end, down)
        return keras.ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_div": self.final_div,
        }


def _cosine(start: float, stop: float, t):
    """Cosine interpolation from ``start`` (t=0) to ``stop`` (t=1)."""
    return stop + (start - stop) * 0.5 * (1.0 + keras.ops.cos(math.pi * t))


def make_schedule(
    schedule: ScheduleConfig, peak: float, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    total = schedule.epochs * steps_per_epoch
    warmup = round(schedule.warmup_epochs * steps_per_epoch)
    if warmup >= total:
        raise ValueError(
            f"schedule.warmup_epochs={schedule.warmup_epochs} must be shorter than "
            f"schedule.epochs={schedule.epochs}"
        )
    if schedule.name == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak / 100 if warmup else peak,
            decay_steps=total - warmup,
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    if schedule.name == "step":
        if warmup:
            raise ValueError("schedule.warmup_epochs is not supported by the step schedule")
        if sorted(schedule.milestones) != list(schedule.milestones) or not all(
            0 < m < 1 for m in schedule.milestones
        ):
            raise ValueError(
                f"schedule.milestones must be increasing fractions of the run in (0, 1); "
                f"got {schedule.milestones}"
            )
        bounds = [int(m * total) for m in schedule.milestones]
        values = [peak * schedule.gamma**i for i in range(len(bounds) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    if schedule.name == "onecycle":
        return OneCycle(peak, total, warmup or int(0.25 * total))
    if schedule.name == "poly":
        if warmup:
            raise ValueError("schedule.warmup_epochs is not supported by the poly schedule")
        return keras.optimizers.schedules.PolynomialDecay(
            peak, decay_steps=total, end_learning_rate=0.0, power=schedule.power
        )
    raise ValueError(f"schedule.name must be cosine, step, onecycle or poly; got {schedule.name!r}")


class _ScaledRates:
    """Mixin for a Keras optimizer: variable ``v`` steps with the rate × ``lr_scale[v.path]``.

    Scaling the rate inside ``update_step`` is exact for every optimizer (scaling gradients
    would be undone by Adam's normalization). Keras' decoupled weight decay keeps the base
    rate (its distributed update is left as is): at fine-tuning's rates and decays
    (lr 0.01, 5e-4) that is a 0.5% shrink over 1,000 steps.
    """

    lr_scale: Mapping[str, float] = MappingProxyType({})

    def _scale_of(self, variable) -> float | None:
        return self._scale_by_key.get(self._var_key(variable))

    def build(self, variables):
        self._scale_by_key = {
            self._var_key(v): self.lr_scale[v.path] for v in variables if v.path in self.lr_scale
        }
        super().build(variables)

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scale_of(variable)
        if scale is not None and scale != 1.0:
            learning_rate = learning_rate * scale
        return super().update_step(gradient, variable, learning_rate)


_SCALED: dict[type, type] = {}


def _with_scaled_rates(cls: type) -> type:
    if cls not in _SCALED:
        _SCALED[cls] = type(f"LayerwiseRate{cls.__name__}", (_ScaledRates, cls), {})
    return _SCALED[cls]


def make_optimizer(
    optim: OptimConfig,
    schedule: ScheduleConfig,
    *,
    batch_size: int,
    steps_per_epoch: int,
    variables: list,
    lr_scale: dict[str, float] | None = None,
) -> keras.optimizers.Optimizer:
    """The optimizer for ``variables`` (the model's trainable ones).

    Weight decay is decoupled (Loshchilov & Hutter) and, unless
    ``optim.decay_bn_and_bias``, skips every vector-shaped variable: BatchNorm's gamma/beta
    and biases, whose decay only hurts (Goyal et al.). ``lr_scale`` maps variable paths to
    learning-rate multipliers (layer-wise decay); unnamed variables use the rate as is.
    """
    lr = make_schedule(schedule, peak_lr(optim, batch_size), steps_per_epoch)
    common = {
        "learning_rate": lr,
        "weight_decay": optim.weight_decay or None,
        "global_clipnorm": optim.clipnorm,
        "use_ema": optim.ema_decay is not None,
        "ema_momentum": optim.ema_decay if optim.ema_decay is not None else 0.99,
    }
    if optim.ema_decay is not None and not 0 < optim.ema_decay < 1:
        raise ValueError(f"optim.ema_decay must be in (0, 1); got {optim.ema_decay}")
    classes = {
        "sgd": keras.optimizers.SGD,
        "adamw": keras.optimizers.AdamW,
        "lamb": keras.optimizers.Lamb,
    }
    if optim.name not in classes:
        raise ValueError(f"optim.name must be sgd, adamw or lamb; got {optim.name!r}")
    cls = classes[optim.name]
    if lr_scale:
        cls = _with_scaled_rates(cls)
    if optim.name == "sgd":
        opt = cls(momentum=optim.momentum, nesterov=optim.nesterov, **common)
    else:
        if optim.name == "adamw":
            common["weight_decay"] = optim.weight_decay  # AdamW requires a number
        opt = cls(**common)
    if lr_scale:
        opt.lr_scale = dict(lr_scale)
    if optim.weight_decay and not optim.decay_bn_and_bias:
        opt.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])
    return opt
