"""Training phases: which stages train, for how many epochs, at which relative rates.

Training from scratch is one phase with every stage trainable; fine-tuning runs several
(``plan_phases``: ``linear``: head only; ``full``; ``two-stage``: head, then everything;
``gradual``: head, then one more stage per phase from the top). Stages are read from the
model's own feature map (``ResNet.feature_info``), so this holds for every layout:

- ``layer_stages``: every layer's stage (``stem``, ``stage1`` … ``stageN``, ``head``);
- ``set_trainable``: frozen layers get ``trainable=False``, which in Keras also runs their
  BatchNorm in inference mode, so frozen statistics never move; ``bn_policy="frozen"``
  does the same for the BatchNorm layers of the unfrozen stages;
- ``lr_scale``: layer-wise learning-rate decay and the head's multiplier, per variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import keras

from resnetkit.training.config import BnPolicy, FinetuneStrategy

STRATEGIES = get_args(FinetuneStrategy)
BN_POLICIES = get_args(BnPolicy)


@dataclass(frozen=True)
class Phase:
    """Epochs ``[first, first + epochs)`` with the named stages trainable."""

    first: int
    epochs: int
    trainable: tuple[str, ...]

    @property
    def end(self) -> int:
        return self.first + self.epochs


def model_layers(model) -> tuple[object, list]:
    """The ResNet whose ``feature_info`` names the stages, and every layer in graph order:
    a classifier's own, or a task model's nested ``backbone`` layers then its head's."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return model, list(model.layers)
    return backbone, [*backbone.layers, *(x for x in model.layers if x is not backbone)]


def layer_stages(model) -> dict[str, str]:
    """Layer name → stage name, from the model's feature map (layers are in graph order);
    every layer after the last stage is the ``head``."""
    resnet, layers = model_layers(model)
    ends = {info.layer: name for name, info in resnet.feature_info.items()}
    order = list(resnet.feature_info)  # stem, stage1, ..., stageN
    stages, current = {}, 0
    for layer in layers:
        stages[layer.name] = order[current] if current < len(order) else "head"
        if layer.name in ends:
            current = order.index(ends[layer.name]) + 1
    return stages


def stage_names(arch: str) -> list[str]:
    """``stem``, ``stage1`` … ``stageN``, ``head``: what ``layer_stages`` assigns."""
    from resnetkit.models.variants import get_variant
    from resnetkit.tasks import backbone_of

    depth = len(get_variant(backbone_of(arch)).depths)
    return ["stem", *(f"stage{i}" for i in range(1, depth + 1)), "head"]


def plan_phases(ft, epochs: int, names: list[str]) -> list[Phase]:
    """The strategy as phases; ``names``: stage names from the input to the head."""
    if ft.strategy not in STRATEGIES:
        raise ValueError(
            f"finetune.strategy must be one of {', '.join(STRATEGIES)}; got {ft.strategy!r}"
        )
    if ft.bn_policy not in BN_POLICIES:
        raise ValueError(f"finetune.bn_policy must be auto, frozen or train; got {ft.bn_policy!r}")
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
    resnet, layers = model_layers(model)
    model.trainable = resnet.trainable = True
    for layer in layers:
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
    backbone = list(model_layers(model)[0].feature_info)  # stem, stage1, ..., stageN
    factor = {s: lr_decay ** (len(backbone) - 1 - i) for i, s in enumerate(backbone)}
    factor["head"] = head_lr_mult
    stages = layer_stages(model)
    return {
        w.path: factor[stages[w.path.split("/")[0]]]
        for w in model.weights
        if w.path.split("/")[0] in stages
    }
