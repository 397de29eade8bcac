"""``resnetkit evaluate``: a trained classifier on labelled data, written into a folder.

The evaluation itself (metrics, charts, predictions.csv) is the classification task's
(``tasks/classify/evaluation.py``); this module picks the data and split and matches the
data's classes to the model's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resnetkit.data.sources import SPLITS, DataSource, ImageSet
from resnetkit.rundir import RunDir
from resnetkit.tasks.classify.evaluation import Evaluation, evaluate_split, write_evaluation


def run_data(run_dir: str | Path | None, data: str | None = None) -> DataSource:
    """``data`` (default: the run's own) split as the run split it: its validation
    fraction and seed, so that "val" means the images the run validated on. Without a run
    directory, ``data`` is split into what its folders or files say (no validation split)."""
    from resnetkit.data import load_data

    if run_dir is None:
        return load_data(data, val_fraction=0.0, seed=0)
    from resnetkit.training.config import load_config

    config = load_config(RunDir(run_dir).require_run().config)
    val_fraction = config.data.val_fraction
    return load_data(data or config.data.source, val_fraction=val_fraction, seed=config.run.seed)


def evaluate_on_data(
    classifier,
    data: str,
    *,
    split: str | None = None,
    tta: bool = False,
    batch_size: int = 128,
    out: str | Path | None = None,
) -> tuple[Evaluation, Path]:
    """``resnetkit evaluate``: load ``data``, pick the split, evaluate, write into ``out``.

    ``split``: ``test``, ``val`` or ``train``; by default the test split, else the
    validation split, else every image (a folder without split subfolders). ``val`` of a
    run's own data is rebuilt with the run's seed and validation fraction. The data's
    classes are matched to the model's by name.
    """
    source = run_data(classifier.run_dir if split == "val" else None, data)
    splits = {k: v for k, v in source.splits.items() if len(v)}
    if split is None:
        split = next((s for s in SPLITS if s in splits), None)
    if split not in splits:
        raise ValueError(
            f"{data}: no images in split {split!r}; available: {', '.join(splits) or 'none'}"
        )
    images = _to_model_classes(splits[split], source.class_names, classifier, data)
    ev = evaluate_split(
        classifier.model,
        images,
        classifier.class_names,
        classifier.prep,
        batch_size=batch_size,
        tta=tta,
    )
    ev.skipped = source.bad + ev.skipped
    ev.metrics.update(
        {
            "model": str(classifier.path),
            "data": data,
            "split": split,
            "skipped_files": [b.path for b in ev.skipped],
        }
    )
    if out is None:
        name = Path(data).name or "data"
        if classifier.run_dir is not None:
            out = RunDir(classifier.run_dir).evaluation(f"{name}-{split}")
        else:
            out = classifier.path.with_name(f"{classifier.path.stem}-evaluation-{name}-{split}")
    return ev, write_evaluation(ev, out, title=f"{Path(data).name} {split}")


def _to_model_classes(images: ImageSet, data_names: list[str], classifier, data: str) -> ImageSet:
    """Relabel ``images`` from the data's class order to the model's."""
    if data_names == classifier.class_names:
        return images
    index = {n: i for i, n in enumerate(classifier.class_names)}
    missing = [n for n in data_names if n not in index]
    if missing:
        where = classifier.run_dir or classifier.path
        raise ValueError(
            f"{data}: class(es) {', '.join(missing[:10])} are not among the model's classes "
            f"({where}: {', '.join(classifier.class_names[:10])}"
            f"{', ...' if len(classifier.class_names) > 10 else ''})"
        )
    mapping = np.asarray([index[n] for n in data_names], np.int32)
    return ImageSet(
        mapping[images.labels], paths=images.paths, arrays=images.arrays, kinds=images.kinds
    )
