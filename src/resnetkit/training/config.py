"""The one typed training config: dataclasses, read from YAML, changed by ``key=value``.

    config = load_config("configs/fashion_mnist_fast.yaml", overrides=["optim.lr=0.05"])
    save_config(config, RunDir(path).config)   # the resolved config; reloading reproduces it

Every key is checked: an unknown key is an error that names it (and the closest valid keys),
and a value of the wrong type is an error that names the key, the expected type and the value.
A closed set of choices is a ``Literal`` type: its values are checked, and the CLI takes its
``choices`` from the same types (``typing.get_args(Precision)``), so they cannot drift.
YAML is read with ``yaml.safe_load``; nothing in a config is ever executed. The module
imports no TensorFlow: ``resnetkit --help`` builds its parser from it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from resnetkit.data.augment import Augment
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.names import unknown_name_error

# The closed sets of the config, one Literal each (the CLI's choices are these).
Task = Literal["classification", "segmentation", "detection"]  # resnetkit.tasks.TASKS
BoxLoss = Literal["l1", "giou"]  # detection: on the deltas, or generalized IoU of the boxes
HeadInit = Literal["he", "torchvision"]  # detection heads' hidden convolutions (model.py)
BadImagePolicy = Literal["skip", "error"]
ClassWeight = Literal["auto"]  # weight each class by n / (classes × count)
Optimizer = Literal["sgd", "adamw", "lamb"]
Schedule = Literal["cosine", "step", "onecycle", "poly"]
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]  # auto: per CPU
Strategy = Literal["auto", "one", "mirrored", "multiworker"]  # tf.distribute
FinetuneStrategy = Literal["linear", "full", "two-stage", "gradual"]
# BatchNorm of unfrozen stages: inference or training; auto: by batch (training/rules.py)
BnPolicy = Literal["auto", "frozen", "train"]


@dataclass
class ModelConfig:
    name: str = "resnet20"
    weights: str | None = None  # registry name or file; None = random initialization
    num_classes: int | None = None  # None: from the data
    input_size: list[int] | None = None  # [H, W, C]; None: from the data / weights
    zero_init_residual: bool = True
    drop_path_rate: float = 0.0
    output_stride: int | None = None  # segmentation: 8, 16 or 32; None: the head's default
    aux_weight: float = 0.0  # segmentation: > 0 adds the auxiliary head, its loss weighted


@dataclass
class DetectConfig:
    """Detection (RetinaNet): anchors, matching, loss and decoding; torchvision's defaults
    except where the data decides."""

    canvas: int | None = None  # images resized onto a square canvas; None: from the data
    channels: int | None = None  # pyramid and head width; None: 256, at most the backbone's
    anchor_sizes: list[list[float]] | None = None  # per level P3…P7; None: from the data
    anchor_ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])  # h / w
    positive_iou: float = 0.5  # an anchor at this IoU or above with a box is positive
    negative_iou: float = 0.4  # below this: background; between: ignored
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    box_loss: BoxLoss = "l1"
    head_init: HeadInit = "he"
    score_threshold: float = 0.05
    top_k: int = 1000  # candidates per pyramid level before NMS
    nms_iou: float = 0.5
    detections: int = 300  # per image, after NMS


@dataclass
class DataConfig:
    source: str = "fashion-mnist"  # data set name, image folder, or manifest .csv
    val_fraction: float = 0.1
    batch_size: int | None = None  # None: 128, at most a quarter of the split (rules.py)
    cache: str | None = "memory"  # "memory", a file path, or None
    on_bad_image: BadImagePolicy = "skip"
    max_pixels: int = MAX_PIXELS
    class_weight: ClassWeight | None = None
    train_subset: int | None = None  # train on this many images (stratified, seeded)


@dataclass
class OptimConfig:
    name: Optimizer = "sgd"
    lr: float = 0.1  # for batch_size 128; scaled linearly with the batch (floor: rules.py)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    decay_bn_and_bias: bool = False  # weight decay on BN parameters and biases too
    clipnorm: float | None = None
    label_smoothing: float = 0.0
    dice_weight: float = 0.0  # segmentation: + this × (1 − soft Dice) in the loss
    ema_decay: float | None = None  # exponential moving average of the weights


@dataclass
class ScheduleConfig:
    name: Schedule = "cosine"
    # Length: ``epochs`` or ``steps``; neither: the step rule (rules.py). A run's saved config
    # records the epochs and passes it chose.
    epochs: int | None = None
    steps: int | None = None
    passes_per_epoch: int | None = None  # passes over the split per epoch; None: rules.py
    warmup_epochs: float = 0.0
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # step: epoch fractions
    gamma: float = 0.1
    power: float = 0.9  # poly: rate = peak × (1 − step/steps)^power, DeepLab's schedule
    # Wall-clock budget of the whole run, minutes: epochs are cut to what fits (budget.py).
    budget_minutes: float | None = None


@dataclass
class RunConfig:
    seed: int = 0
    deterministic: bool = False
    precision: Precision = "float32"  # a run's saved config records what "auto" chose
    strategy: Strategy = "auto"
    keep_checkpoints: int = 3
    tta: bool = False  # final test metrics with horizontal-flip test-time augmentation
    jit_compile: bool = False  # XLA; measured slower than oneDNN for these convnets on CPU
    report: bool = True  # evaluation/SPLIT/ and report.html at the end (`resnetkit report`)


@dataclass
class FinetuneConfig:
    """Fine-tuning from pretrained weights (``source`` set) instead of training from scratch."""

    source: str | None = None  # registry name, weights file (arch: model.name), or run dir
    strategy: FinetuneStrategy = "two-stage"
    trainable_stages: list[str] | None = None  # e.g. [stage3, stage4, head]; None: all
    head_epochs: int | None = None  # two-stage/gradual head-only epochs; None: epochs // 5
    bn_policy: BnPolicy = "auto"
    lr_decay: float = 0.7  # each stage below the top one trains at this times the next rate
    head_lr_mult: float = 10.0  # the new head's rate: optim.lr times this
    patience: int | None = None  # early stop after this many epochs without a better val acc
    restore_best: bool = True  # end on the best val epoch's weights (with a val split)


@dataclass
class Config:
    task: Task = "classification"  # which tasks/ package the engine runs
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: Augment = field(default_factory=Augment)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key and type."""
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise unknown_name_error(
                "config key", path, [f"{where}.{n}" if where else n for n in names]
            )
        values[key] = _convert(hints[key], value, path)
    try:
        return cls(**values)
    except ValueError as e:  # a dataclass's own check (e.g. Augment.crop)
        raise ValueError(f"{where or 'config'}: {e}") from e


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(options[0], value, path)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        allowed = ", ".join(map(str, args))
        raise ValueError(f"{path}: expected one of {allowed}; got {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and type(value) is hint:
        return value
    raise ValueError(f"{path}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["optim.lr=0.05", "model.name=resnet56"]`` applied to plain config data.

    Values are read as YAML (``0.05`` is a float, ``true`` a bool, ``[1, 2]`` a list,
    ``null`` None); the types are checked when the config is built.
    """
    data = dict(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected key=value, e.g. optim.lr=0.05")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a section")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return data


def load_config(
    path: str | Path | None = None, overrides: list[str] = (), preset: list[str] = ()
) -> Config:
    """Defaults, then the model's task's defaults (``resnetkit.tasks.TASK_PRESETS``), then
    ``preset`` (``key=value``, e.g. fine-tuning's own defaults), then the YAML file (if any),
    then ``key=value`` overrides; all checked.

    A file's top-level ``recipe`` mapping (what a shipped recipe records about itself: its
    command and result, ``resnetkit recipes``) describes the file and is not config.
    """
    from resnetkit.tasks import TASK_PRESETS, task_of

    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({e})") from e
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config file must be a mapping of sections")
        data.pop("recipe", None)
    config = _layered(data, list(preset), list(overrides))
    task = task_of(config.model.name)
    if task not in TASK_PRESETS:
        return config
    return _layered(data, [*TASK_PRESETS[task], *preset], list(overrides))


def _layered(data: dict, preset: list[str], overrides: list[str]) -> Config:
    """The defaults, ``preset``, the file's ``data`` and ``overrides``, in that order."""
    base = to_dict(from_dict(Config, _merge(apply_overrides({}, preset), data)))
    return from_dict(Config, apply_overrides(base, overrides))


def _merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, section by section."""
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML; ``load_config(path)`` gives the same config."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
