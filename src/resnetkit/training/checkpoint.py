"""Checkpoints in a run directory, each a folder that appears complete or not at all.

    checkpoints/epoch-0003/              the state after 3 epochs
        model.weights.h5                 model and optimizer variables (EMA included), Keras' format
        state.json                       epochs done, steps into the next, metrics history,
                                         random-seed states (not in Keras' weight files)
    checkpoints/epoch-0004-step-000120/  written on SIGTERM/SIGINT, 120 steps into epoch 4
    checkpoints/best-epoch-0002/         the best by the monitored metric

A checkpoint is written to ``checkpoints/.tmp-*``, flushed to disk, then renamed into place:
a process killed at any moment leaves either the new checkpoint or none, and the previous
ones untouched. Keras' ``BackupAndRestore`` overwrites its single file in place, so it cannot
promise that; the variables themselves are still written by Keras (``save_weights``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import keras
import numpy as np

from resnetkit.training.state import RunState

NAME = re.compile(r"^(best-)?epoch-(\d{4,})(?:-step-(\d{6,}))?$")


class CheckpointError(OSError):
    """A checkpoint could not be written; the previous ones are intact."""


def checkpoint_name(epochs_done: int, step: int = 0, best: bool = False) -> str:
    name = f"epoch-{epochs_done:04d}" + (f"-step-{step:06d}" if step else "")
    return f"best-{name}" if best else name


def _key(path: Path) -> tuple[int, int]:
    m = NAME.match(path.name)
    return int(m.group(2)), int(m.group(3) or 0)


class Checkpoints:
    """The ``checkpoints/`` folder of one run."""

    def __init__(self, folder: str | Path, keep: int = 3):
        if keep < 1:
            raise ValueError(f"run.keep_checkpoints must be at least 1; got {keep}")
        self.folder = Path(folder)
        self.keep = keep

    def _complete(self, best: bool) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [
            p
            for p in self.folder.iterdir()
            if (m := NAME.match(p.name))
            and bool(m.group(1)) == best
            and (p / "state.json").is_file()
            and (p / "model.weights.h5").is_file()
        ]
        return sorted(found, key=_key)

    def latest(self) -> Path | None:
        found = self._complete(best=False)
        return found[-1] if found else None

    def best(self) -> Path | None:
        found = self._complete(best=True)
        return found[-1] if found else None

    def clean(self) -> None:
        """Remove what a killed process left half-written."""
        if self.folder.is_dir():
            for p in self.folder.glob(".tmp-*"):
                shutil.rmtree(p, ignore_errors=True)

    def save(self, model: keras.Model, state: RunState, best: bool = False) -> Path:
        """Write model + optimizer variables and ``state``; keep the newest ``keep``."""
        name = checkpoint_name(state.epochs_done, state.step, best)
        final = self.folder / name
        tmp = self.folder / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        previous = self.best() if best else self.latest()
        try:
            tmp.mkdir(parents=True)
            model.save_weights(tmp / "model.weights.h5")
            state.seed_states = seed_states(model)
            (tmp / "state.json").write_text(json.dumps(state.to_dict(), indent=1))
            for f in tmp.iterdir():
                _fsync(f)
            if final.exists():  # the same point saved again (a resumed run)
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync(self.folder)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            kept = f"; {previous} is intact" if previous is not None else ""
            raise CheckpointError(
                f"could not write checkpoint {final}: {e.strerror or e}{kept}"
            ) from e
        self._prune(best)
        return final

    def _prune(self, best: bool) -> None:
        found = self._complete(best)
        for old in found[: -1 if best else -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def read_state(path: Path) -> RunState:
        try:
            return RunState.from_dict(json.loads((path / "state.json").read_text()))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: unreadable checkpoint state ({e})") from e

    @staticmethod
    def restore(model: keras.Model, path: Path) -> None:
        """Load model and optimizer variables and random-seed states saved by ``save``."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(path / "model.weights.h5")
        saved = Checkpoints.read_state(path).seed_states
        variables = _seed_variables(model)
        if len(saved) != len(variables):
            raise ValueError(
                f"{path}: {len(saved)} random-seed states saved, the model has {len(variables)}"
            )
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(np.asarray(value, dtype=variable.dtype))


def restore_network(model: keras.Model, path: Path) -> None:
    """The network's weights alone from checkpoint ``path``, whichever optimizer it holds
    (a fine-tune's phases each have their own)."""
    plain = type(model).from_config(model.get_config())
    plain.load_weights(path / "model.weights.h5")
    saved = {w.path: w for w in plain.weights}
    for w in model.weights:
        w.assign(saved[w.path])


def _seed_variables(model: keras.Model) -> list:
    """The states of the model's random-seed generators (dropout, stochastic depth).

    Keras' weight files leave them out; without them a resumed run would draw other
    dropout masks than an uninterrupted one.
    """
    return [v for v in model.variables if "seed_generator" in v.path]


def seed_states(model: keras.Model) -> list[list[int]]:
    return [np.asarray(keras.ops.convert_to_numpy(v)).tolist() for v in _seed_variables(model)]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
