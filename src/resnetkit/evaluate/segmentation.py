"""``resnetkit evaluate`` of a segmentation run: mIoU and the rest on any split of a mask
folder, with the run's preprocessing and class map (``tasks/segment/``'s scores)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from resnetkit.data.masks import from_mask_folder
from resnetkit.files import write_atomic
from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir


def evaluate_segmentation(
    run_dir: str | Path,
    data: str,
    *,
    split: str | None = None,
    batch_size: int = 8,
    out: str | Path | None = None,
) -> tuple[dict, Path]:
    """Scores of the run's model on ``split`` (default: test, else val) of ``data``, written
    to ``out`` (default: RUN_DIR/evaluation/DATA-SPLIT/metrics.json)."""
    from resnetkit.data.sources import load_class_map
    from resnetkit.tasks import load_model
    from resnetkit.tasks.segment.task import Segmentation, SegmentInputs
    from resnetkit.training.config import load_config

    run = RunDir(run_dir).require_run()
    config = load_config(run.config)
    source = from_mask_folder(data, val_fraction=config.data.val_fraction, seed=config.run.seed)
    names = load_class_map(run.class_map)
    if source.class_names != names:
        raise ValueError(
            f"{data}: classes {source.class_names} are not the run's {names} ({run.class_map})"
        )
    splits = {k: v for k, v in source.splits.items() if len(v)}
    split = split or next((s for s in ("test", "val") if s in splits), None)
    if split not in splits:
        raise ValueError(f"{data}: no pairs in split {split!r}; available: {', '.join(splits)}")
    model = load_model(run.path)
    prep = Preprocessing.from_dict(model.get_config()["preprocessing"])
    task = Segmentation(replace(config, data=replace(config.data, source=str(data))))
    task.num_classes = len(names)
    inputs = SegmentInputs(source, prep, model.input_shape[-1], prep.crop_size, "evaluation")
    scores = task.split_scores(model, inputs, splits[split], batch_size)
    skipped = [b.path for b in source.bad]
    scores.update({"model": str(run.path), "data": str(data), "split": split,
                   "images": len(splits[split]), "skipped_files": skipped})  # fmt: skip
    folder = Path(out) if out else run.evaluation(f"{Path(data).name or 'data'}-{split}")
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "metrics.json", json.dumps(scores, indent=1))
    return scores, folder


def format_scores(scores: dict) -> str:
    """The lines ``resnetkit evaluate`` prints for a segmentation run."""
    lines = [f"mean IoU {scores['miou']:.4f}   pixel accuracy {scores['pixel_accuracy']:.4f}   "
             f"frequency-weighted IoU {scores['fw_iou']:.4f}", "class          IoU"]  # fmt: skip
    for name, iou in scores["per_class_iou"].items():
        lines.append(f"{name:<14} {'–' if iou is None else f'{iou:.4f}'}")
    return "\n".join(lines)
