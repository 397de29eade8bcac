"""``resnetkit evaluate`` of a segmentation run: mIoU and the rest on any split of a mask
folder, with the run's preprocessing and class map (``tasks/segment/``'s scores)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from resnetkit.data.masks import from_mask_folder
from resnetkit.files import write_atomic


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
    from resnetkit.evaluate.runs import open_run_split
    from resnetkit.tasks.segment.task import Segmentation, SegmentInputs

    opened = open_run_split(run_dir, data, split, from_mask_folder, unit="pairs")
    config, model, prep = opened.config, opened.model, opened.prep
    task = Segmentation(replace(config, data=replace(config.data, source=str(data))))
    task.num_classes = len(opened.source.class_names)
    inputs = SegmentInputs(opened.source, prep, model.input_shape[-1], prep.crop_size,
                           "evaluation")  # fmt: skip
    scores = task.split_scores(model, inputs, opened.images, batch_size)
    skipped = [b.path for b in opened.source.bad]
    scores.update({"model": str(opened.run.path), "data": str(data), "split": opened.split,
                   "images": len(opened.images), "skipped_files": skipped})  # fmt: skip
    folder = opened.folder(out)
    write_atomic(folder / "metrics.json", json.dumps(scores, indent=1))
    return scores, folder


def format_scores(scores: dict) -> str:
    """The lines ``resnetkit evaluate`` prints for a segmentation run."""
    lines = [f"mean IoU {scores['miou']:.4f}   pixel accuracy {scores['pixel_accuracy']:.4f}   "
             f"frequency-weighted IoU {scores['fw_iou']:.4f}", "class          IoU"]  # fmt: skip
    for name, iou in scores["per_class_iou"].items():
        lines.append(f"{name:<14} {'–' if iou is None else f'{iou:.4f}'}")
    return "\n".join(lines)
