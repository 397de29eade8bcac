"""Fine-tuning: pretrained weights in, a new head, and stages unfrozen per strategy.

``finetune(config, run_dir)`` resolves ``config.finetune.source`` and runs the training
engine with it as the start; the phases (``training/phases.py``), checkpoints and resume
are the engine's. This module holds what only fine-tuning needs:

- ``PRESET`` and ``finetune_config``: fine-tuning's own defaults under any config file;
- ``resolve_source``: a registry name, a weights file (architecture: ``model.name``) or a
  resnetkit run directory → architecture, weights and the preprocessing they expect;
- ``Source.load``: the weights into a model whose head is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir
from resnetkit.weights.load import check_registry_name, file_format
from resnetkit.weights.specs import REGISTRY

# Fine-tuning's own defaults, under any config file: a pretrained backbone wants a lower
# rate and weight decay than training from scratch, and no warmup of a fresh network. Its
# length is the step rule's (training/rules.py), as from scratch.
PRESET = (
    "optim.lr=0.01",
    "optim.weight_decay=1e-4",
    "schedule.warmup_epochs=0",
    "model.zero_init_residual=false",
)


def finetune_config(
    source: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
):
    """The config ``resnetkit finetune --from SOURCE [--config FILE] [--set ...]`` runs:
    defaults, then ``PRESET``, then the file, then ``finetune.source`` and ``overrides``."""
    from resnetkit.training.config import load_config

    items = [f"finetune.source={source}"] if source is not None else []
    return load_config(config_file, [*items, *overrides], preset=PRESET)


@dataclass
class Source:
    """Pretrained weights to start from (the training engine's ``start``)."""

    arch: str
    weights: str | Path | dict  # registry name, file, or {"layer/weight": array} of a run
    prep: Preprocessing
    channels: int
    description: str

    def load(self, model) -> str:
        """Load the weights into ``model``, keeping its own new head; a line to print."""
        report = load_source(model, self)
        notes = "".join(f"; {n}" for n in report.notes)
        return f"fine-tuning from {self.description}: {report.assigned} weights loaded{notes}"


def resolve_source(source: str, arch: str) -> Source:
    """Where the weights come from, and the preprocessing they expect."""
    if source in REGISTRY:
        spec = REGISTRY[source]
        return Source(spec.arch, source, spec.preprocessing, 3, f"registry weights {source!r}")
    path = Path(source)
    if path.is_dir():
        return _run_source(path)
    if not path.is_file():
        check_registry_name(source)
        raise FileNotFoundError(f"finetune.source {source!r}: no such file or run directory")
    fmt = file_format(path)
    # The preprocessing of the registry's weights for this architecture and file format.
    prep = next(
        (s.preprocessing for s in REGISTRY.values() if s.arch == arch and s.format == fmt),
        Preprocessing(),
    )
    return Source(arch, path, prep, 3, f"weights file {path}")


def _run_source(run_dir: Path) -> Source:
    from resnetkit.tasks import load_model

    model_file = RunDir(run_dir).require_model()
    model = load_model(model_file)
    if not hasattr(model, "variant"):
        raise ValueError(f"{model_file}: not a resnetkit model")
    arrays = {w.path: np.asarray(w.numpy()) for w in model.weights}
    prep = model.preprocessing or Preprocessing(
        crop_size=model.input_shape[1] or 224, resize_size=model.input_shape[1] or 224
    )
    config = model.get_config()
    return Source(config["variant"], arrays, prep, model.input_shape[-1], f"run {run_dir}")


def load_source(model, source: Source):
    """Load ``source`` into ``model`` (a task's model: into its ``backbone``), always
    leaving the model's own (new) head."""
    from resnetkit.weights.load import assign, load_weights

    target = getattr(model, "backbone", model)
    if isinstance(source.weights, dict):
        return assign(target, source.weights, source=source.description, new_head=True)
    return load_weights(target, source.weights, new_head=True)


def finetune(config=None, run_dir=None, *, resume: bool = False, stream=None) -> dict:
    """Fine-tune per ``config`` (``config.finetune.source`` set) into ``run_dir``, or
    resume the fine-tuning run in ``run_dir``; return the summary.

    The source is resolved here; everything else (phases, checkpoints, resume, logs,
    summary) is the training engine's, with the source as its ``start``.
    """
    from resnetkit.training.config import load_config
    from resnetkit.training.engine import train

    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        saved = load_config(RunDir(run_dir).require_run().config)
    else:
        saved = config
    if saved is None or not saved.finetune.source:
        raise ValueError(
            "fine-tuning needs finetune.source (CLI: --from): a registry name, a weights "
            "file or a run directory"
        )
    from resnetkit.tasks import backbone_of

    start = resolve_source(saved.finetune.source, backbone_of(saved.model.name))
    return train(None if resume else config, run_dir, resume=resume, stream=stream, start=start)
