"""``RunDir``: the one owner of a run directory's file and folder names.

    run_dir/
        config.yaml         the resolved config (``resnetkit train --config`` it to rerun)
        class_map.json      class names in label order
        checkpoints/        the last ``run.keep_checkpoints`` + the best (training/checkpoint.py)
        metrics.csv, metrics.jsonl, curves.png   per epoch
        tensorboard/        TensorBoard logs
        bad_images.csv      files skipped as unreadable
        model.keras         the final model (EMA weights when optim.ema_decay is set)
        summary.json        best/final/test metrics, wall time, images/second, versions
        evaluation/SPLIT/   the task's evaluation of one split (metrics.json + charts)
        report.html         one self-contained page per run

Every module that reads or writes a run goes through this class, so a file is renamed in
one place. It knows no task and imports nothing heavier than the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class NotARunError(FileNotFoundError):
    """A folder that is not (or not yet) a complete resnetkit run."""


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory (nothing is created by constructing it)."""

    path: Path
    MODEL = "model.keras"  # also the name ``resnetkit export --format keras`` gives its file

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def class_map(self) -> Path:
        return self.path / "class_map.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def metrics_jsonl(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def bad_images(self) -> Path:
        return self.path / "bad_images.csv"

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def evaluations(self) -> Path:
        return self.path / "evaluation"

    def evaluation(self, split: str) -> Path:
        """``evaluation/SPLIT/``: one evaluation's metrics.json and charts."""
        return self.evaluations / split

    # What a folder is, asked the same way everywhere.

    def is_run(self) -> bool:
        """A run has begun here (its config is written first, before any training)."""
        return self.config.is_file()

    def is_finished(self) -> bool:
        return self.model.is_file()

    def require_run(self) -> RunDir:
        if not self.is_run():
            raise NotARunError(f"{self.path}: not a resnetkit run directory (no config.yaml)")
        return self

    def require_model(self) -> Path:
        """``model.keras``, or an error that says how to finish the run."""
        if self.is_finished():
            return self.model
        if self.is_run():
            raise NotARunError(
                f"{self.path}: no model.keras (the run has not finished: resume it with "
                f"`resnetkit train --resume {self.path}`)"
            )
        raise NotARunError(f"{self.path}: no model.keras (not a resnetkit run directory)")

    def read_summary(self) -> dict[str, Any]:
        """``summary.json`` as a dict; empty while the run has none."""
        if not self.summary.is_file():
            return {}
        return json.loads(self.summary.read_text())

    def read_history(self) -> list[dict[str, Any]]:
        """``metrics.jsonl``: one record per epoch; empty while the run has none."""
        if not self.metrics_jsonl.is_file():
            return []
        lines = self.metrics_jsonl.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]
