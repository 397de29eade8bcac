"""A trained dense-prediction run opened on one split of a data folder: what evaluation and
the export parity check of segmentation and detection runs share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir


@dataclass
class RunSplit:
    """A run, its config and model, and the chosen split of ``data`` read as it trained."""

    run: RunDir
    config: object  # training.config.Config
    model: object  # the run's Keras model
    prep: Preprocessing
    source: object  # the folder's MaskSource or BoxSource
    split: str
    data: str

    @property
    def images(self):
        return self.source.splits[self.split]

    def folder(self, out: str | Path | None) -> Path:
        """``out``, else RUN_DIR/evaluation/DATA-SPLIT/, created."""
        folder = Path(out) if out else self.run.evaluation(f"{Path(self.data).name or 'data'}"
                                                           f"-{self.split}")  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def read_run_data(run_dir: str | Path | None, data: str | None, read: Callable, *,
                  split: str | None = None, prefer: tuple[str, ...] = ("test", "val"),
                  unit: str = "images") -> tuple[object, str, str]:  # fmt: skip
    """(source, split, data) of ``data`` (default: the run's own data), read by ``read``
    with the run's validation fraction and seed; ``split`` defaults to the first of
    ``prefer`` that has ``unit``. An error says what is missing."""
    from resnetkit.training.config import load_config

    if run_dir is None and data is None:
        raise ValueError("not a run directory, so its data is unknown; pass --data")
    config = load_config(RunDir(run_dir).config) if run_dir is not None else None
    data = str(data or config.data.source)
    if config is None:
        source = read(data, val_fraction=0.1, seed=0)
    else:
        source = read(data, val_fraction=config.data.val_fraction, seed=config.run.seed)
    splits = {k: v for k, v in source.splits.items() if len(v)}
    split = split or next((s for s in prefer if s in splits), None)
    if split not in splits:
        raise ValueError(f"{data}: no {unit} in split {split!r}; available: {', '.join(splits)}")
    return source, split, data


def open_run_split(run_dir: str | Path, data: str | None, split: str | None,
                   read: Callable, *, unit: str = "images") -> RunSplit:  # fmt: skip
    """The run at ``run_dir`` with ``split`` (default: test, else val) of ``data`` (see
    ``read_run_data``); an error names a class list that differs from the run's."""
    from resnetkit.data.sources import load_class_map
    from resnetkit.tasks import load_model
    from resnetkit.training.config import load_config

    run = RunDir(run_dir).require_run()
    source, split, data = read_run_data(run.path, data, read, split=split, unit=unit)
    names = load_class_map(run.class_map)
    if source.class_names != names:
        raise ValueError(
            f"{data}: classes {source.class_names} are not the run's {names} ({run.class_map})"
        )
    model = load_model(run.path)
    prep = Preprocessing.from_dict(model.get_config()["preprocessing"])
    return RunSplit(run, load_config(run.config), model, prep, source, split, data)
