"""``resnetkit evaluate`` of a detection run: COCO's mAP by pycocotools on any split of a
box folder, with the run's canvas, preprocessing, class map and decoding settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from resnetkit.data.boxes import from_box_folder


def evaluate_detection(
    run_dir: str | Path,
    data: str,
    *,
    split: str | None = None,
    batch_size: int = 8,
    out: str | Path | None = None,
) -> tuple[dict, Path]:
    """COCOeval's figures of the run's model on ``split`` (default: test, else val) of
    ``data``; metrics.json and detections.json in ``out`` (default:
    RUN_DIR/evaluation/DATA-SPLIT/)."""
    from resnetkit.evaluate.runs import open_run_split
    from resnetkit.tasks.detect.task import DetectInputs, Detection, write_evaluation

    opened = open_run_split(run_dir, data, split, from_box_folder)
    config, model, prep = opened.config, opened.model, opened.prep
    task = Detection(replace(config, data=replace(config.data, source=str(data))))
    task.inputs = DetectInputs(opened.source, prep, model.input_shape[-1], prep.crop_size,
                               model.anchor_config, None, [], 0, "evaluation")  # fmt: skip
    scores, found = task.split_scores(model, task.inputs, opened.images, batch_size)
    scores.update({"model": str(opened.run.path), "data": str(data), "split": opened.split,
                   "images": len(opened.images),
                   "skipped": [f"{b.path}: {b.reason}" for b in opened.source.bad]})  # fmt: skip
    write_evaluation(opened.folder(out), scores, found, opened.images, opened.source)
    return scores, opened.folder(out)


def format_detection_scores(scores: dict) -> str:
    """The lines ``resnetkit evaluate`` prints for a detection run."""
    lines = [
        f"mAP {scores['map']:.4f}   mAP@0.5 {scores['map_50']:.4f}   mAP@0.75 "
        f"{scores['map_75']:.4f}   (pycocotools COCOeval, {scores['images']} images, "
        f"{scores['detections']} detections)",
        f"by size: small {scores['map_small']:.4f}   medium {scores['map_medium']:.4f}   "
        f"large {scores['map_large']:.4f}",
        "class          AP",
    ]
    for name, ap in scores["per_class_ap"].items():
        lines.append(f"{name:<14} {'–' if ap is None or np.isnan(ap) else f'{ap:.4f}'}")
    return "\n".join(lines)
