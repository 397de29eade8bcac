"""``resnetkit evaluate`` of a detection run: COCO's mAP by pycocotools on any split of a
box folder, with the run's canvas, preprocessing, class map and decoding settings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from resnetkit.data.boxes import from_box_folder
from resnetkit.files import write_atomic
from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir


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
    from resnetkit.data.sources import load_class_map
    from resnetkit.tasks import load_model
    from resnetkit.tasks.detect.task import DetectInputs, Detection
    from resnetkit.training.config import load_config

    run = RunDir(run_dir).require_run()
    config = load_config(run.config)
    source = from_box_folder(data, val_fraction=config.data.val_fraction, seed=config.run.seed)
    names = load_class_map(run.class_map)
    if source.class_names != names:
        raise ValueError(
            f"{data}: classes {source.class_names} are not the run's {names} ({run.class_map})"
        )
    splits = {k: v for k, v in source.splits.items() if len(v)}
    split = split or next((s for s in ("test", "val") if s in splits), None)
    if split not in splits:
        raise ValueError(f"{data}: no images in split {split!r}; available: {', '.join(splits)}")
    model = load_model(run.path)
    prep = Preprocessing.from_dict(model.get_config()["preprocessing"])
    task = Detection(replace(config, data=replace(config.data, source=str(data))))
    channels = model.input_shape[-1]
    task.inputs = DetectInputs(source, prep, channels, prep.crop_size, model.anchor_config,
                               None, [], 0, "evaluation")  # fmt: skip
    scores, found = task.split_scores(model, task.inputs, splits[split], batch_size)
    scores.update({"model": str(run.path), "data": str(data), "split": split,
                   "images": len(splits[split]),
                   "skipped": [f"{b.path}: {b.reason}" for b in source.bad]})  # fmt: skip
    folder = Path(out) if out else run.evaluation(f"{Path(data).name or 'data'}-{split}")
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "metrics.json", json.dumps(scores, indent=1))
    write_atomic(folder / "detections.json", json.dumps(found))
    return scores, folder


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
