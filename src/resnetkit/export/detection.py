"""``resnetkit export`` of a detection run: decoding and NMS inside every artifact.

keras-hub's RetinaNet runs its NMS in ``predict_step`` only, so its exported graph returns
raw anchor outputs (keras-cv#2188). Here the exported graph is the detector followed by
``DecodeDetections`` (TensorFlow's top-k, box decoding and ``non_max_suppression_padded``),
so SavedModel, ONNX, LiteRT and .keras artifacts all return final ``boxes`` (x1, y1, x2, y2
in canvas pixels), ``scores``, ``classes`` and ``count``, with the run's ``detect.*``
decoding settings.

- Input: the run's canvas (``canvas × canvas``, normalized); the caller resizes each image's
  longer side to the canvas, pads below and right with zeros and divides the boxes by the
  scale (``BoxPredictor.on_canvas`` does; the model card says so).
- Parity: the run's validation images through the artifact and through the float32 Keras
  model (BatchNorm unfolded): every detection must have one of the same class at IoU ≥
  ``min_iou`` (0.99) and a score within ``tolerance`` (1e-4). Detections whose score is
  within the tolerance of the score threshold may appear on one side only.
- No int8: quantizing scores moves them across the threshold and NMS decisions with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from resnetkit.export.artifacts import load_artifact
from resnetkit.export.card import card_of, write_card, write_labels
from resnetkit.export.export import (
    FORMATS,
    ExportResult,
    _checked_request,
    _write_graph,
    finish_card,
    staged,
)
from resnetkit.export.fold import inference_model
from resnetkit.tasks.detect.boxes import iou
from resnetkit.tasks.detect.decode import DecodeDetections
from resnetkit.tasks.detect.predictor import BoxPredictor, decoding, load_box_predictor

OUTPUTS = ("boxes", "scores", "classes", "count")


def export_detector(
    source: str | Path,
    out: str | Path,
    format: str,
    *,
    include_preprocessing: bool = False,
    quantize: str | None = None,
    fold_bn: bool = True,
    data: str | None = None,
    check_count: int = 16,
    tolerance: float = 1e-4,
    min_iou: float = 0.99,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export the detector of ``source`` (a run directory or ``.keras`` file) to ``out``
    and check it; see the module doc."""
    if quantize is not None:
        raise ValueError(f"--quantize {quantize}: detectors export in float32 only (int8 "
                         "scores cross the score threshold and change NMS decisions)")  # fmt: skip
    if include_preprocessing:
        raise ValueError("--include-preprocessing: a detector's input is the padded canvas, "
                         "which the caller prepares (model_card.json says how)")  # fmt: skip
    out = _checked_request(format, quantize, Path(out), overwrite)
    started = time.perf_counter()
    from resnetkit.tasks import load_model

    detector = load_model(source)
    keras_run = load_box_predictor(source, detector)
    options = {"anchors": detector.anchor_config.to_dict(), **decoding(source)}
    raw = keras.Model(detector.inputs, [detector.output["cls_logits"],
                                        detector.output["bbox_regression"],
                                        *(detector.get_layer(n).output
                                          for n in detector.level_names)])  # fmt: skip
    reference, _ = inference_model(raw, fold=False)
    deploy, fold = inference_model(raw, fold=fold_bn)
    log(f"BatchNorm: {len(fold.folded)} folded into convolutions, {len(fold.kept)} kept")
    canvas, channels = keras_run.canvas, keras_run.channels
    graph = _decoded(deploy, canvas, channels, options)
    checks, description = box_checks(keras_run, data, check_count)

    keras_format, filename, runtime = FORMATS[format]
    with staged(out) as stage:
        artifact = stage / filename
        _write_graph(graph, artifact, keras_format, {}, canvas)
        caller = (f"resize the image's longer side to {canvas} (bilinear), normalize "
                  f"({keras_run.prep.mode}), pad below and right with zeros to {canvas}×"
                  f"{canvas}; divide the boxes by the resize scale")  # fmt: skip
        d = DecodeDetections(**options).detections
        settings = {k: v for k, v in options.items() if k != "anchors"}
        output_spec = {"kind": "detections", "classes": keras_run.num_classes,
                       "boxes": [None, d, 4], "scores": [None, d], "classes_index": [None, d],
                       "count": [None], "box_format": "x1, y1, x2, y2 in canvas pixels",
                       "decoding": settings}  # fmt: skip
        card = card_of(detector, keras_run.prep, keras_run.class_names, _run_dir(source),
                       source, format, filename, runtime, "none", [None, canvas, canvas,
                       channels], caller, output_spec, fold, 0, task="detection")  # fmt: skip
        write_labels(stage, keras_run.class_names)
        write_card(stage, card)
        expected = _decoded(reference, canvas, channels, options)
        got = load_artifact(stage)
        parity = box_parity(got.forward, _keras_forward(expected), checks,
                            threshold=DecodeDetections(**options).score_threshold,
                            tolerance=tolerance, min_iou=min_iou)  # fmt: skip
        parity["data"] = description
        finish_card(stage, card, parity, artifact, started, format)
    return ExportResult(out, out / filename, card)


def _run_dir(source: str | Path) -> Path | None:
    from resnetkit.rundir import RunDir

    path = Path(source)
    return path if path.is_dir() and RunDir(path).config.is_file() else None


def _decoded(network: keras.Model, canvas: int, channels: int, options: dict) -> keras.Model:
    """``network`` (image → class logits, box deltas, pyramid levels) with decoding and
    NMS on top, taking ``canvas × canvas`` images."""
    image = keras.Input((canvas, canvas, channels), name="image")
    logits, deltas, *levels = network(image)
    out = DecodeDetections(name="decode", **options)([image, logits, deltas, *levels])
    return keras.Model(image, out, name=f"{network.name}_decoded")


def _keras_forward(model: keras.Model) -> Callable[[np.ndarray], dict]:
    return lambda x: {k: np.asarray(v) for k, v in model(x, training=False).items()}


def box_checks(predictor: BoxPredictor, data: str | None, count: int,
               seed: int = 0) -> tuple[np.ndarray, str]:  # fmt: skip
    """``count`` validation images (else test images) of the run's data or ``data``, a
    seeded sample, on the canvas as the network takes them."""
    from resnetkit.data.boxes import from_box_folder
    from resnetkit.evaluate.runs import read_run_data

    run_dir = _run_dir(predictor.path.parent)
    if run_dir is None and data is None:
        raise ValueError(f"{predictor.path}: not a run directory, so its data is unknown; "
                         "pass --data (a detection folder) for the parity check")  # fmt: skip
    source, name, root = read_run_data(run_dir, data, from_box_folder, prefer=("val", "test"))
    split = source.splits[name]
    index = np.sort(np.random.default_rng(seed).permutation(len(split))[:count])
    x = np.stack([predictor.on_canvas(predictor.decode(split.images[i]))[0] for i in index])
    return x, f"{root}: {len(x)} images of the {name} split (seeded sample)"


@dataclass
class Matching:
    """How two runtimes' detections of the same images agree."""

    matched: int = 0  # same class, IoU ≥ min_iou, score within the tolerance
    tied: int = 0  # score equal to another of its class in its image: order is the runtime's
    borderline: int = 0  # score within the tolerance of the threshold: may be on one side only
    unmatched: int = 0
    worst_iou: float = 1.0
    worst_score: float = 0.0

    def add(self, a: tuple, b: tuple, *, threshold: float, tolerance: float,
            min_iou: float) -> None:  # fmt: skip
        """Compare one image's detections ``a`` and ``b`` (boxes, scores, classes) both ways."""
        for side, other in ((a, b), (b, a)):
            for box, score, k in zip(*side, strict=True):
                same = other[2] == k
                overlap = iou(box[None], other[0][same])[0] if same.any() else np.zeros(1)
                j = int(overlap.argmax())
                diff = float(abs(other[1][same][j] - score)) if same.any() else 1.0
                twins = np.sum((side[2] == k) & (np.abs(side[1] - score) <= tolerance))
                if overlap[j] >= min_iou and diff <= tolerance:
                    self.matched += side is a
                    self.worst_iou = min(self.worst_iou, float(overlap[j]))
                    self.worst_score = max(self.worst_score, diff)
                elif twins > 1:
                    self.tied += 1
                elif abs(score - threshold) <= tolerance:
                    self.borderline += 1
                else:
                    self.unmatched += 1


def box_parity(got: Callable, want: Callable, x: np.ndarray, *, threshold: float,
               tolerance: float, min_iou: float, batch: int = 8) -> dict:  # fmt: skip
    """The artifact's detections (``got``) against the Keras model's (``want``) on the
    canvases ``x``: figures and a verdict (``passed``)."""
    m = Matching()
    for i in range(0, len(x), batch):
        g, w = got(x[i : i + batch]), want(x[i : i + batch])
        for row in range(len(w["count"])):
            m.add(_rows(w, row), _rows(g, row), threshold=threshold, tolerance=tolerance,
                  min_iou=min_iou)  # fmt: skip
    passed = m.unmatched == 0
    verdict = (
        f"{m.matched} detections matched (worst IoU {m.worst_iou:.4f}, worst score "
        f"difference {m.worst_score:.1e}), {m.tied} tied, {m.unmatched} unmatched"
    )
    reference = "the run's Keras model in float32, BatchNorm unfolded"
    return {"images": len(x), "reference": reference, **asdict(m), "min_iou": min_iou,
            "tolerance": tolerance, "max_score_diff": m.worst_score, "passed": bool(passed),
            "verdict": verdict}  # fmt: skip


def _rows(found: dict, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(found["count"][row])
    return (np.asarray(found["boxes"][row, :n], np.float32),
            np.asarray(found["scores"][row, :n], np.float32),
            np.asarray(found["classes"][row, :n]))  # fmt: skip
