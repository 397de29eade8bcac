"""Per-layer gradient norms at initialization and after a few training steps.

The backward signal of a deep plain network must pass every layer; a residual network
gives it a short path through each block's shortcut. Measuring ``‖∂L/∂W‖`` for every
convolution and dense kernel, in network order, shows how evenly that signal reaches the
layers — on one chart for several models (``resnetkit analyze gradients``).

    result = run_gradients(["plain56", "resnet56"], data="fashion-mnist", steps=100, out="g/")
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from resnetkit.analyze.defaults import (
    DEFAULT_DATA,
    DEFAULT_LR,
    DEFAULT_SEED,
    GRADIENT_BATCH_SIZE,
    GRADIENT_STEPS,
)
from resnetkit.data.augment import Augment
from resnetkit.data.pipeline import build_dataset
from resnetkit.files import save_study
from resnetkit.models import create_model, get_variant

GRADIENTS_JSON = "gradients.json"
GRADIENTS_PNG = "gradients.png"


def kernel_variables(model: keras.Model) -> list:
    """Every convolution and dense kernel, in network order (input to output).

    A functional model lists its layers in topological order; each layer with a ``kernel``
    contributes one entry. Biases and BatchNorm parameters are left out: the kernels are
    where depth lives.
    """
    kernels = []
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) >= 2:
            kernels.append(kernel)
    if not kernels:
        raise ValueError(f"{model.name}: no convolution or dense kernels found")
    return kernels


def gradient_norms(
    model: keras.Model,
    images,
    labels,
    *,
    variables: list | None = None,
    from_logits: bool = True,
) -> tuple[np.ndarray, float]:
    """L2 norm of ``∂(mean cross-entropy)/∂kernel`` for each kernel, and the loss.

    Computed on one batch with BatchNorm in training mode, as a training step sees it. The
    forward pass would move BatchNorm's moving statistics; they are put back, so measuring
    leaves the model as it was.
    """
    variables = kernel_variables(model) if variables is None else list(variables)
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        with tf.GradientTape() as tape:
            outputs = tf.cast(model(images, training=True), tf.float32)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    labels, outputs, from_logits=from_logits
                )
            )
        grads = tape.gradient(loss, variables)
    finally:
        for v, value in zip(model.non_trainable_variables, saved, strict=True):
            v.assign(value)
    missing = [v.path for v, g in zip(variables, grads, strict=True) if g is None]
    if missing:
        raise ValueError(f"no gradient reaches {', '.join(missing)}: not on the loss's path")
    norms = np.array([float(tf.norm(tf.cast(g, tf.float32))) for g in grads])
    return norms, float(loss)


def _weight_norms(variables: list) -> list[float]:
    return [float(np.linalg.norm(keras.ops.convert_to_numpy(v))) for v in variables]


def run_gradients(
    models: list[str],
    *,
    data: str = DEFAULT_DATA,
    steps: int = GRADIENT_STEPS,
    batch_size: int = GRADIENT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    seed: int = DEFAULT_SEED,
    out: str | Path | None = None,
) -> dict:
    """Gradient norms of every kernel of each model at initialization and after ``steps``
    SGD steps; writes gradients.json and gradients.png into ``out`` (when given).

    Each model starts from the same seed, trains on the same stream of batches (no
    augmentation; SGD, momentum 0.9, Nesterov, constant rate ``lr × batch_size / 128``, He et
    al.'s initial rate at the default) and is measured on the same fixed batch of
    ``batch_size`` training images, before and after. Models get standard initialization:
    zero-initialized residual branches would give their kernels no gradient at the start.
    """
    from resnetkit.tasks.classify.inputs import resolve_inputs
    from resnetkit.training.config import Config, DataConfig
    from resnetkit.versions import versions

    _check(models, steps, batch_size)
    config = Config(data=DataConfig(source=data, val_fraction=0.0))
    config = replace(config, run=replace(config.run, seed=seed))
    inputs = resolve_inputs(config)
    source, prep = inputs.source, inputs.prep
    train_split = source.splits["train"]
    if batch_size > len(train_split):
        raise ValueError(
            f"batch_size={batch_size} is larger than the training split ({len(train_split)})"
        )
    pick = np.sort(np.random.default_rng(seed).choice(len(train_split), batch_size, False))
    common = {"channels": inputs.channels, "batch_size": batch_size}
    x_probe, y_probe = next(iter(build_dataset(train_split.subset(pick), prep, **common)))

    result: dict = {
        "experiment": "gradient norm of every convolution/dense kernel, input to output",
        "data": data,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr * batch_size / 128,
        "seed": seed,
        "optimizer": "SGD, momentum 0.9, Nesterov, constant learning rate, no weight decay",
        "measured_on": (
            f"one fixed batch of {batch_size} training images; BatchNorm in training mode; "
            "mean cross-entropy"
        ),
        "models": {},
        "versions": versions(),
    }

    def stream() -> tf.data.Dataset:
        return build_dataset(
            train_split,
            prep,
            **common,
            training=True,
            augment=Augment(crop="none", flip=False),
            seed=seed,
            cache="memory",
            drop_remainder=True,
            epochs=math.ceil(steps / (len(train_split) // batch_size)),
        )

    for name in models:
        started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        model = create_model(
            name,
            num_classes=source.num_classes,
            input_shape=inputs.input_shape,
            preprocessing=prep.to_dict(),
        )
        row = _measure(model, (x_probe, y_probe), stream if steps else None, steps, result["lr"])
        row["seconds"] = time.perf_counter() - started
        result["models"][name] = row
    save_study(out, result, GRADIENTS_JSON, gradient_chart, GRADIENTS_PNG)
    return result


def _check(models: list[str], steps: int, batch_size: int) -> None:
    """Refuse bad arguments before any data is loaded or model built."""
    if not models:
        raise ValueError("--models: name at least one model")
    for name in models:
        get_variant(name)  # unknown names fail now, with suggestions
    if steps < 0:
        raise ValueError(f"steps must be >= 0; got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")


def _measure(model, probe: tuple, stream, steps: int, lr: float) -> dict:
    """One model's row: gradient and weight norms on the ``probe`` batch at initialization
    and, with a ``stream``, after ``steps`` SGD steps on it."""
    kernels = kernel_variables(model)
    init, init_loss = gradient_norms(model, *probe, variables=kernels)
    row = {
        "layers": [v.path for v in kernels],
        "init": {
            "grad_norm": init.tolist(),
            "weight_norm": _weight_norms(kernels),
            "loss": init_loss,
        },
    }
    if stream is None:
        return row
    model.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(stream(), steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    trained, trained_loss = gradient_norms(model, *probe, variables=kernels)
    row["trained"] = {
        "grad_norm": trained.tolist(),
        "weight_norm": _weight_norms(kernels),
        "loss": trained_loss,
        "mean_training_loss": float(history.history["loss"][-1]),
    }
    return row


def _spread(norms: list[float]) -> float:
    """Largest over smallest norm among the convolution kernels (the head excluded)."""
    conv = np.asarray(norms[:-1] if len(norms) > 1 else norms)
    return float(conv.max() / conv.min()) if conv.min() > 0 else math.inf


def format_gradients(result: dict) -> str:
    """A table: loss and gradient norms of the first conv, last conv and head, and the
    max/min spread over the convolutions, per model, at init and after training."""
    header = ("model", "when", "loss", "first conv", "last conv", "head", "max/min conv")
    rows = []
    for name, row in result["models"].items():
        for key, when in (("init", "init"), ("trained", f"{result['steps']} steps")):
            if key not in row:
                continue
            g = row[key]["grad_norm"]
            rows.append(
                (
                    name,
                    when,
                    f"{row[key]['loss']:.3f}",
                    f"{g[0]:.3e}",
                    f"{g[-2] if len(g) > 1 else g[0]:.3e}",
                    f"{g[-1]:.3e}",
                    f"{_spread(g):.1f}",
                )
            )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def gradient_chart(result: dict, path: str | Path) -> None:
    """All models on one log-scale chart: gradient norm against layer depth; solid at
    initialization, dashed after the training steps."""
    from resnetkit.plots import _pyplot, save_figure

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, row) in enumerate(result["models"].items()):
        color = colors[i % len(colors)]
        depth = np.arange(1, len(row["layers"]) + 1)
        ax.plot(depth, row["init"]["grad_norm"], "-", color=color, lw=1.6, label=f"{name}, init")
        if "trained" in row:
            ax.plot(
                depth,
                row["trained"]["grad_norm"],
                "--",
                color=color,
                lw=1.6,
                label=f"{name}, after {result['steps']} steps",
            )
    ax.set_yscale("log")
    ax.set_xlabel("layer depth (convolution/dense kernel, input → output)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("gradient norm ‖∂L/∂W‖₂")
    ax.set_title(
        f"Per-layer gradient norms on {result['data']} "
        f"(one batch of {result['batch_size']}, BatchNorm in training mode)"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)
