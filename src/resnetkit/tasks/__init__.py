"""Tasks: what one kind of problem adds to the task-free run engine (``training/``).

A task is a class constructed with the run's config that provides (``tasks/base.py`` ``Task``;
``docs/architecture.md``):

- data: ``load_inputs(start)`` (the data source and the input decision), ``write_targets``
  (what the run directory needs to read outputs: the class map), ``train_stream`` /
  ``eval_stream`` (tf.data batches in the loss's target form), ``class_weight``;
- the network: ``build_model(inputs, arch, weights=True)``; ``loss()``, ``metrics()`` and
  the ``monitor`` metric (higher is better) for the best checkpoint and early stopping;
- after training: ``test_metrics`` (the summary's ``test_*`` figures), ``describe_test``
  (the line printed), ``evaluate`` (``evaluation/SPLIT/``), ``data_summary``; its
  ``bad_log`` collects files that only decoding found damaged.

Classification (``tasks/classify/``) is the first; segmentation (``tasks/segment/``) and
detection (``tasks/detect/``) follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base.py imports Keras; the registry of names does not need it
    from resnetkit.tasks.base import Task

TASKS = ("classification", "segmentation", "detection")  # the values of the config's ``task`` key
# A task's own defaults (``key=value``), under any preset, config file and flag. Detection
# takes its optimizer settings from the RetinaNet references: torchvision's weight decay, a
# warm-up, mmdetection's clipping of the global gradient norm, and half torchvision's rate
# (0.01 at batch 16, linear in the batch) since these runs warm up for an epoch, not 1,000
# steps; SGD at classification's rate and no warm-up diverges in the first epoch.
TASK_PRESETS = {
    "detection": (
        "optim.lr=0.04",
        "optim.weight_decay=1e-4",
        "optim.clipnorm=35",
        "schedule.warmup_epochs=1",
    ),
}
TASK_PRESET_REASONS = {"detection": "the RetinaNet references' optimizer"}
MODEL_MODULES = (
    "resnetkit.models",
    "resnetkit.tasks.segment.model",
    "resnetkit.tasks.segment.losses",
    "resnetkit.tasks.detect.model",
    "resnetkit.tasks.detect.decode",
)  # register their classes


def task_of(model_name: str) -> str:
    """The task a model name belongs to: ``retinanet_BACKBONE_fpn`` names detectors,
    ``HEAD_BACKBONE`` names (``unet_resnet18``) segmentation models, zoo names classifiers."""
    from resnetkit.models.variants import VARIANTS
    from resnetkit.tasks.segment.model import HEADS

    if model_name in VARIANTS:
        return "classification"
    if model_name.startswith("retinanet_") and model_name.endswith("_fpn"):
        return "detection"
    return "segmentation" if model_name.partition("_")[0] in HEADS else "classification"


def resolve_task(task: str, model_name: str) -> str:
    """The task a run trains: the one its model name belongs to (``unet_resnet18``:
    segmentation) when the config leaves the default; an error when they disagree."""
    implied = task_of(model_name)
    if task == "classification" and implied != "classification":
        return implied
    if task != implied:
        raise ValueError(f"task={task!r} does not fit model {model_name!r} ({implied})")
    return task


def backbone_of(model_name: str) -> str:
    """The zoo backbone of a task's model name (a classifier's name is its own)."""
    task = task_of(model_name)
    if task == "classification":
        return model_name
    if task == "detection":
        return model_name[len("retinanet_") : -len("_fpn")]
    return model_name.partition("_")[2]


def _named_with(model_name: str, backbone: str) -> str:
    """``model_name`` with its backbone replaced by ``backbone``."""
    if task_of(model_name) == "detection":
        return f"retinanet_{backbone}_fpn"
    return f"{model_name.partition('_')[0]}_{backbone}"


def model_for_source(model_name: str, source_arch: str) -> str:
    """The model a fine-tune builds from a source of architecture ``source_arch``: the
    source's own for a classifier; for a task's model, the named one, whose backbone must
    be the source's."""
    if task_of(model_name) == "classification":
        return source_arch
    backbone = backbone_of(model_name)
    if backbone != source_arch:
        raise ValueError(
            f"the source is a {source_arch}, the model {model_name!r} has a {backbone} "
            f"backbone: use --model {_named_with(model_name, source_arch)}"
        )
    return model_name


def saved_task(path) -> str:
    """The task of a saved model: a run directory's config says it; a ``.keras`` file's
    top-level class does (``Segmenter``: segmentation). Reads no weights."""
    import json
    import zipfile
    from pathlib import Path

    from resnetkit.rundir import RunDir

    path = Path(path)
    if path.is_dir() and RunDir(path).config.is_file():
        import yaml  # the config's own loader (training/) sits above tasks/

        config = yaml.safe_load(RunDir(path).config.read_text(encoding="utf8")) or {}
        return str(config.get("task", "classification"))
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            try:
                config = json.loads(archive.read("config.json"))
            except (KeyError, ValueError):
                return "classification"  # load_model names the fault
        kind = {"Segmenter": "segmentation", "Detector": "detection"}
        return kind.get(config.get("class_name"), "classification")
    return "classification"


def load_model(path):
    """Any resnetkit model (a classifier or a task's model) from a ``.keras`` file or a run
    directory, in Keras' safe mode; importing each task's model module first registers its
    classes with Keras (``resnetkit.models.load_model`` knows only the backbones)."""
    import importlib

    for module in MODEL_MODULES:
        importlib.import_module(module)
    from resnetkit.models import load_model as load

    return load(path)


def get_task(config) -> Task:
    """The task object for ``config`` (its ``task`` key; classification by default)."""
    name = config.task
    if name == "classification":
        from resnetkit.tasks.classify.task import Classification

        return Classification(config)
    if name == "segmentation":
        from resnetkit.tasks.segment.task import Segmentation

        return Segmentation(config)
    if name == "detection":
        from resnetkit.tasks.detect.task import Detection

        return Detection(config)
    from resnetkit.names import unknown_name_error

    raise unknown_name_error("task", name, TASKS)
