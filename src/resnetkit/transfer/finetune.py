"""Fine-tuning: pretrained weights in, a new head, and stages unfrozen per strategy.

``finetune(config, run_dir)`` is ``train`` with ``config.finetune.source`` set; this module
holds what differs from training from scratch:

- ``resolve_source``: a registry name, a weights file (architecture: ``model.name``) or a
  resnetkit run directory → architecture, weights and the preprocessing they expect;
- ``layer_stages``: every layer's stage (``stem``, ``stage1`` … ``stageN``, ``head``), read
  from the model's own feature map (``ResNet.feature_info``), so it holds for every layout;
- ``plan_phases``: the strategy as a list of phases, each with its epochs and trainable
  stages (``linear``: head only; ``full``; ``two-stage``: head, then everything;
  ``gradual``: head, then one more stage per phase from the top);
- ``set_trainable``: frozen layers get ``trainable=False``, which in Keras also runs their
  BatchNorm in inference mode, so frozen statistics never move; ``bn_policy="frozen"``
  does the same for the BatchNorm layers of the unfrozen stages;
- ``lr_scale``: layer-wise learning-rate decay and the head's multiplier, per variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from resnetkit.preprocessing import Preprocessing
from resnetkit.weights.specs import REGISTRY

STRATEGIES = ("linear", "full", "two-stage", "gradual")
# Fine-tuning's own defaults, under any config file: a pretrained backbone wants a lower
# rate and weight decay than training from scratch, and no warmup of a fresh network.
PRESET = (
    "optim.lr=0.01",
    "optim.weight_decay=1e-4",
    "schedule.epochs=10",
    "schedule.warmup_epochs=0",
    "model.zero_init_residual=false",
)
BN_POLICIES = ("frozen", "train")


@dataclass
class Source:
    """Pretrained weights to start from."""

    arch: str
    weights: str | Path | dict  # registry name, file, or {"layer/weight": array} of a run
    prep: Preprocessing
    channels: int
    description: str


@dataclass(frozen=True)
class Phase:
    """Epochs ``[first, first + epochs)`` with the named stages trainable."""

    first: int
    epochs: int
    trainable: tuple[str, ...]

    @property
    def end(self) -> int:
        return self.first + self.epochs


def resolve_source(source: str, arch: str) -> Source:
    """Where the weights come from, and the preprocessing they expect."""
    if source in REGISTRY:
        spec = REGISTRY[source]
        return Source(spec.arch, source, spec.preprocessing, 3, f"registry weights {source!r}")
    path = Path(source)
    if path.is_dir():
        return _run_source(path)
    if not path.is_file():
        from resnetkit.weights.specs import get_weight_spec

        if len(path.parts) == 1 and not path.suffix:
            get_weight_spec(source)  # a mistyped registry name: the error lists the names
        raise FileNotFoundError(f"finetune.source {source!r}: no such file or run directory")
    fmt = "keras_h5" if path.suffix.lower() in (".h5", ".hdf5") else "torch"
    # The preprocessing of the registry's weights for this architecture and file format.
    prep = next(
        (s.preprocessing for s in REGISTRY.values() if s.arch == arch and s.format == fmt),
        Preprocessing(),
    )
    return Source(arch, path, prep, 3, f"weights file {path}")


def _run_source(run_dir: Path) -> Source:
    model_file = run_dir / "model.keras"
    if not model_file.is_file():
        raise FileNotFoundError(
            f"finetune.source {run_dir}: no model.keras (not a finished resnetkit run; "
            f"finish it with `resnetkit train --resume {run_dir}`)"
        )
    model = keras.saving.load_model(model_file, safe_mode=True, compile=False)
    if not hasattr(model, "variant"):
        raise ValueError(f"{model_file}: not a resnetkit model")
    arrays = {w.path: np.asarray(w.numpy()) for w in model.weights}
    prep = model.preprocessing or Preprocessing(
        crop_size=model.input_shape[1] or 224, resize_size=model.input_shape[1] or 224
    )
    config = model.get_config()
    return Source(config["variant"], arrays, prep, model.input_shape[-1], f"run {run_dir}")


def load_source(model, source: Source):
    """Load ``source`` into ``model``, always leaving the model's own (new) head."""
    from resnetkit.weights.load import assign, load_weights

    if isinstance(source.weights, dict):
        return assign(model, source.weights, source=source.description, new_head=True)
    return load_weights(model, source.weights, new_head=True)


def layer_stages(model) -> dict[str, str]:
    """Layer name → stage name, from the model's feature map (layers are in graph order)."""
    ends = {info.layer: name for name, info in model.feature_info.items()}
    order = list(model.feature_info)  # stem, stage1, ..., stageN
    stages, current = {}, 0
    for layer in model.layers:
        stages[layer.name] = order[current] if current < len(order) else "head"
        if layer.name in ends:
            current = order.index(ends[layer.name]) + 1
    return stages


def stage_names(arch: str) -> list[str]:
    """``stem``, ``stage1`` … ``stageN``, ``head``: what ``layer_stages`` assigns."""
    from resnetkit.models.variants import get_variant

    return ["stem", *(f"stage{i}" for i in range(1, len(get_variant(arch).depths) + 1)), "head"]


def plan_phases(ft, epochs: int, names: list[str]) -> list[Phase]:
    """The strategy as phases; ``names``: stage names from the input to the head."""
    if ft.strategy not in STRATEGIES:
        raise ValueError(
            f"finetune.strategy must be one of {', '.join(STRATEGIES)}; got {ft.strategy!r}"
        )
    if ft.bn_policy not in BN_POLICIES:
        raise ValueError(f"finetune.bn_policy must be frozen or train; got {ft.bn_policy!r}")
    chosen = names
    if ft.trainable_stages is not None:
        wrong = [s for s in ft.trainable_stages if s not in names]
        if wrong:
            raise ValueError(
                f"finetune.trainable_stages: unknown stage(s) {', '.join(wrong)}; "
                f"this model has {', '.join(names)}"
            )
        chosen = [s for s in names if s in ft.trainable_stages or s == "head"]
    if ft.strategy == "linear":
        return [Phase(0, epochs, ("head",))]
    if ft.strategy == "full":
        return [Phase(0, epochs, tuple(chosen))]
    head = ft.head_epochs if ft.head_epochs is not None else max(1, epochs // 5)
    if ft.strategy == "two-stage":
        if not 0 < head < epochs:
            raise ValueError(
                f"two-stage fine-tuning needs 0 < finetune.head_epochs < schedule.epochs; "
                f"got {head} of {epochs}"
            )
        return [Phase(0, head, ("head",)), Phase(head, epochs - head, tuple(chosen))]
    # gradual: the head alone, then one more stage per phase, from the top down.
    backbone = [s for s in reversed(chosen) if s != "head"]
    rest = epochs - head
    if head < 1 or rest < len(backbone):
        raise ValueError(
            f"gradual fine-tuning unfreezes {len(backbone)} stages one per phase after "
            f"{head} head epoch(s): schedule.epochs must be at least {head + len(backbone)}; "
            f"got {epochs}"
        )
    phases, first = [Phase(0, head, ("head",))], head
    for i in range(len(backbone)):
        n = rest // len(backbone) + (1 if i < rest % len(backbone) else 0)
        phases.append(Phase(first, n, ("head", *backbone[: i + 1])))
        first += n
    return phases


def set_trainable(model, trainable: tuple[str, ...], bn_policy: str) -> None:
    """Freeze every layer outside ``trainable`` stages (BatchNorm then runs in inference
    mode); with ``bn_policy="frozen"`` also the BatchNorm layers inside them."""
    stages = layer_stages(model)
    model.trainable = True
    for layer in model.layers:
        on = stages[layer.name] in trainable
        if bn_policy == "frozen" and isinstance(layer, keras.layers.BatchNormalization):
            on = False
        layer.trainable = on


def lr_scale(model, lr_decay: float, head_lr_mult: float) -> dict[str, float]:
    """Variable path → learning-rate multiplier: the head ×``head_lr_mult``, the top stage
    ×1, each stage below ×``lr_decay`` of the one above, the stem last."""
    if not 0 < lr_decay <= 1:
        raise ValueError(f"finetune.lr_decay must be in (0, 1]; got {lr_decay}")
    if head_lr_mult <= 0:
        raise ValueError(f"finetune.head_lr_mult must be positive; got {head_lr_mult}")
    backbone = list(model.feature_info)  # stem, stage1, ..., stageN
    factor = {s: lr_decay ** (len(backbone) - 1 - i) for i, s in enumerate(backbone)}
    factor["head"] = head_lr_mult
    stages = layer_stages(model)
    return {
        w.path: factor[stages[w.path.split("/")[0]]]
        for w in model.weights
        if w.path.split("/")[0] in stages
    }


def finetune(config, run_dir=None, *, resume: bool = False, stream=None) -> dict:
    """Fine-tune per ``config`` (``config.finetune.source`` set) into ``run_dir``.

    The run directory, checkpoints, resume, logs and summary are those of ``train``.
    """
    from resnetkit.training.train import train

    if not resume and (config is None or not config.finetune.source):
        raise ValueError("finetune needs finetune.source: a registry name, file or run dir")
    return train(config, run_dir, resume=resume, stream=stream)
