"""``resnetkit export`` of a detection run: decoding and NMS inside every artifact.

keras-hub's RetinaNet runs its NMS in ``predict_step`` only, so its exported graph returns
raw anchor outputs (keras-cv#2188). Here the exported graph is the detector followed by
``DecodeDetections`` (TensorFlow's top-k, box decoding and ``non_max_suppression_padded``),
so SavedModel, ONNX, LiteRT and .keras artifacts all return final ``boxes`` (x1, y1, x2, y2
in canvas pixels), ``scores``, ``classes`` and ``count``, with the run's ``detect.*``
decoding settings.

- Input: the run's canvas (``canvas × canvas``, normalized); the caller resizes each image's
  longer side to the canvas, pads below and right with zeros and divides the boxes by the
  scale (``BoxPredictor.on_canvas`` does; the model card says so). With
  ``--include-preprocessing`` the graph does all of it (``graph.CanvasPreprocessing``):
  uint8 images of any size in, boxes in their own pixels out.
- Parity: the run's validation images through the artifact in its runtime and through the
  float32 Keras model (BatchNorm unfolded), each as ``resnetkit predict`` runs it: every
  detection must have one of the same class at IoU ≥ ``min_iou`` (0.99) and a score within
  ``tolerance`` (1e-4). A detection whose score ties another of its class in its image may
  differ (the order of equal scores is the runtime's); one within the tolerance of the
  score threshold may appear on one side only.
- No int8: quantizing scores moves them across the threshold and NMS decisions with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
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
    canvas, channels, prep = keras_run.canvas, keras_run.channels, keras_run.prep
    inside = prep if include_preprocessing else None
    graph = _decoded(deploy, canvas, channels, options, prep=inside)
    images, description = box_checks(keras_run, data, check_count)

    keras_format, filename, runtime = FORMATS[format]
    with staged(out) as stage:
        artifact = stage / filename
        _write_graph(graph, artifact, keras_format, {}, canvas)
        card = card_of(detector, prep, keras_run.class_names, _run_dir(source), source,
                       format, filename, runtime,
                       *_interface(keras_run, options, include_preprocessing), fold, 0,
                       task="detection")  # fmt: skip
        write_labels(stage, keras_run.class_names)
        write_card(stage, card)
        reference = _decoded(reference, canvas, channels, options)
        expected = replace(keras_run, forward=_keras_forward(reference))
        decode = DecodeDetections(**options)
        parity = box_parity(load_artifact(stage), expected, images,
                            threshold=decode.score_threshold, tolerance=tolerance,
                            min_iou=min_iou, keep=decode.detections)  # fmt: skip
        parity["data"] = description
        finish_card(stage, card, parity, artifact, started, format)
    return ExportResult(out, out / filename, card)


def _interface(predictor: BoxPredictor, options: dict, inside: bool) -> tuple:
    """The card's (preprocessing inside, input shape, what the caller must do, output)."""
    canvas, channels, prep = predictor.canvas, predictor.channels, predictor.prep
    if inside:
        what, shape = "resize_pad_normalize", [None, None, None, channels]
        caller, where = "nothing: the graph resizes, normalizes and pads", "the image's pixels"
    else:
        what, shape, where = "none", [None, canvas, canvas, channels], "canvas pixels"
        caller = (f"resize the image's longer side to {canvas} (bilinear), normalize "
                  f"({prep.mode}), pad below and right with zeros to {canvas}×{canvas}; "
                  "divide the boxes by the resize scale")  # fmt: skip
    d = DecodeDetections(**options).detections
    settings = {k: v for k, v in options.items() if k != "anchors"}
    output = {"kind": "detections", "classes": predictor.num_classes, "canvas": canvas,
              "boxes": [None, d, 4], "scores": [None, d], "classes_index": [None, d],
              "count": [None], "box_format": f"x1, y1, x2, y2 in {where}",
              "decoding": settings}  # fmt: skip
    return what, shape, caller, output


def _run_dir(source: str | Path) -> Path | None:
    from resnetkit.rundir import RunDir

    path = Path(source)
    return path if path.is_dir() and RunDir(path).config.is_file() else None


def _decoded(network: keras.Model, canvas: int, channels: int, options: dict, *,
             prep=None) -> keras.Model:  # fmt: skip
    """``network`` (image → class logits, box deltas, pyramid levels) with decoding and
    NMS on top: taking ``canvas × canvas`` normalized images, or with ``prep`` uint8 images
    of any size, boxes in their own pixels."""
    from resnetkit.export.graph import BoxesToImage, CanvasPreprocessing

    if prep is None:
        image = x = keras.Input((canvas, canvas, channels), name="image")
    else:
        image = keras.Input((None, None, channels), dtype="uint8", name="image")
        x, scale = CanvasPreprocessing(prep.to_dict(), canvas, channels, name="canvas")(image)
    logits, deltas, *levels = network(x)
    out = DecodeDetections(name="decode", **options)([x, logits, deltas, *levels])
    if prep is not None:
        out = {**out, "boxes": BoxesToImage(name="to_image")([out["boxes"], scale, image])}
    return keras.Model(image, out, name=f"{network.name}_decoded")


def _keras_forward(model: keras.Model) -> Callable[[np.ndarray], dict]:
    return lambda x: {k: np.asarray(v) for k, v in model(x, training=False).items()}


def box_checks(predictor: BoxPredictor, data: str | None, count: int,
               seed: int = 0) -> tuple[list[np.ndarray], str]:  # fmt: skip
    """``count`` validation images (else test images) of the run's data or ``data``, a
    seeded sample, as uint8 arrays."""
    from resnetkit.data.boxes import from_box_folder
    from resnetkit.evaluate.runs import read_run_data

    run_dir = _run_dir(predictor.path.parent)
    if run_dir is None and data is None:
        raise ValueError(f"{predictor.path}: not a run directory, so its data is unknown; "
                         "pass --data (a detection folder) for the parity check")  # fmt: skip
    source, name, root = read_run_data(run_dir, data, from_box_folder, prefer=("val", "test"))
    split = source.splits[name]
    index = np.sort(np.random.default_rng(seed).permutation(len(split))[:count])
    images = [predictor.decode(split.images[i]) for i in index]
    return images, f"{root}: {len(images)} images of the {name} split (seeded sample)"


EQUAL_PIXELS = 0.01  # boxes whose corners all agree this closely are the same box


@dataclass
class Matching:
    """How two runtimes' detections of the same images agree."""

    matched: int = 0  # same class, IoU ≥ min_iou, score within the tolerance
    tied: int = 0  # score equal to another of its class in its image: order is the runtime's
    # Score within the tolerance of the threshold, or of the last detection kept where an
    # image has as many as the model keeps: may be on one side only.
    borderline: int = 0
    unmatched: int = 0
    worst_iou: float = 1.0
    worst_score: float = 0.0

    def add(self, a: tuple, b: tuple, *, threshold: float, tolerance: float, min_iou: float,
            keep: int | None = None) -> None:  # fmt: skip
        """Compare one image's detections ``a`` and ``b`` (boxes, scores, classes) both ways;
        ``keep``: the most detections the model returns per image."""
        for side, other in ((a, b), (b, a)):
            full = keep is not None and len(other[1]) >= keep
            cut = float(other[1].min()) if full else threshold
            for box, score, k in zip(*side, strict=True):
                same = other[2] == k
                overlap = iou(box[None], other[0][same])[0] if same.any() else np.zeros(1)
                if same.any():  # equal boxes match, zero-area ones (clipped to an edge) too
                    equal = np.abs(other[0][same] - box).max(axis=1) <= EQUAL_PIXELS
                    overlap = np.where(equal, 1.0, overlap)
                j = int(overlap.argmax())
                diff = float(abs(other[1][same][j] - score)) if same.any() else 1.0
                twins = np.sum((side[2] == k) & (np.abs(side[1] - score) <= tolerance))
                if overlap[j] >= min_iou and diff <= tolerance:
                    self.matched += side is a
                    self.worst_iou = min(self.worst_iou, float(overlap[j]))
                    self.worst_score = max(self.worst_score, diff)
                elif twins > 1:
                    self.tied += 1
                elif abs(score - threshold) <= tolerance or score <= cut + tolerance:
                    self.borderline += 1
                else:
                    self.unmatched += 1


def box_parity(got: BoxPredictor, want: BoxPredictor, images: list[np.ndarray], *,
               threshold: float, tolerance: float, min_iou: float,
               keep: int | None = None) -> dict:  # fmt: skip
    """The artifact's detections (``got``) against the Keras model's (``want``) on
    ``images``, each in its own pixels: figures and a verdict (``passed``)."""
    m = Matching()
    for image in images:
        m.add(detection_rows(want.detect(image)), detection_rows(got.detect(image)),
              threshold=threshold, tolerance=tolerance, min_iou=min_iou, keep=keep)  # fmt: skip
    passed = m.unmatched == 0
    verdict = (
        f"{m.matched} detections matched (worst IoU {m.worst_iou:.4f}, worst score "
        f"difference {m.worst_score:.1e}), {m.tied} tied, {m.unmatched} unmatched"
    )
    reference = "the run's Keras model in float32, BatchNorm unfolded"
    return {"images": len(images), "reference": reference, **asdict(m), "min_iou": min_iou,
            "tolerance": tolerance, "max_score_diff": m.worst_score, "passed": bool(passed),
            "verdict": verdict}  # fmt: skip


def detection_rows(found: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``BoxPredictor`` detections as (boxes, scores, class indices) arrays."""
    return (np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
            np.array([d["score"] for d in found], np.float32),
            np.array([d["class_index"] for d in found], np.int64))  # fmt: skip
