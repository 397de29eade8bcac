"""``resnetkit export`` of a segmentation run: the same staging, exporters, card and parity
check as a classifier's (export.py), with what differs for dense outputs.

- The graph takes images of any size (SavedModel, ONNX, .keras) and returns logits at that
  size; LiteRT's converter needs static spatial shapes for the padded convolutions, so a
  LiteRT artifact takes the run's crop size and the caller (``MaskPredictor``) resizes to it
  and resizes the logits back.
- ``--include-preprocessing`` puts normalization in the graph (uint8 input); segmentation
  has no resize or crop to put there.
- Parity: the run's validation pairs at their own size, logits compared with the float32
  Keras model (max abs difference <= tolerance), with the pixel agreement of the argmax
  and the mIoU of both against the truth masks; an int8 artifact is judged by its pixel
  agreement (>= ``min_agreement``) and reports its mIoU change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from resnetkit.export.artifacts import load_artifact
from resnetkit.export.card import card_of, write_card, write_labels
from resnetkit.export.export import (
    FORMATS,
    ExportResult,
    ParityError,
    _checked_request,
    _write_graph,
    finish_card,
    staged,
)
from resnetkit.export.fold import inference_model
from resnetkit.export.graph import with_preprocessing
from resnetkit.tasks.segment.metrics import confusion, scores
from resnetkit.tasks.segment.predictor import MaskPredictor, load_mask_predictor


@dataclass
class MaskChecks:
    """Validation pairs for the parity check, and training images for int8 calibration."""

    images: list[np.ndarray]  # uint8 (H, W, C)
    masks: list[np.ndarray]  # uint8 (H, W), 255 ignored
    description: str
    calibration: list[np.ndarray]


def export_segmenter(
    source: str | Path,
    out: str | Path,
    format: str,
    *,
    include_preprocessing: bool = False,
    quantize: str | None = None,
    fold_bn: bool = True,
    data: str | None = None,
    check_count: int = 32,
    calibration_count: int = 100,
    tolerance: float = 1e-4,
    min_agreement: float = 0.99,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export the segmenter of ``source`` (a run directory or ``.keras`` file) to ``out``
    and check it; see the module doc."""
    out = _checked_request(format, quantize, Path(out), overwrite)
    started = time.perf_counter()
    keras_run = load_mask_predictor(source)
    from resnetkit.tasks import load_model

    model = load_model(source)
    output = model.output["logits"] if isinstance(model.output, dict) else model.output
    main = keras.Model(model.inputs, output, name=model.name)
    checks = mask_checks(keras_run, data, check_count, calibration_count if quantize else 0)
    reference, _ = inference_model(main, fold=False)
    deploy, fold = inference_model(main, fold=fold_bn)
    prep, channels = keras_run.prep, keras_run.channels
    size = (prep.crop_size, prep.crop_size) if format == "litert" else None
    log(f"BatchNorm: {len(fold.folded)} folded into convolutions, {len(fold.kept)} kept")
    inside = "normalize" if include_preprocessing else "none"
    spatial = size or (None, None)
    if include_preprocessing:
        graph = with_preprocessing(deploy, prep, resize=False, spatial=spatial)
    else:
        image = keras.Input((*spatial, channels), name="image")
        graph = keras.Model(image, deploy(image), name=deploy.name)

    keras_format, filename, runtime = FORMATS[format]
    with staged(out) as stage:
        artifact = stage / filename
        options = {}
        if quantize == "int8":
            options = _int8_options(checks.calibration, keras_run, size, inside)
        _write_graph(graph, artifact, keras_format, options, prep.crop_size)
        shape = [None, *spatial, channels]
        caller = "nothing: the graph normalizes" if include_preprocessing else (
            f"normalize ({prep.mode})")  # fmt: skip
        if size:
            caller = f"resize to {size[0]}×{size[1]} and the logits back; " + caller
        output_spec = {"kind": "logits", "shape": [None, *spatial, keras_run.num_classes]}
        card = card_of(main, prep, keras_run.class_names, keras_run.run_dir, source, format,
                       filename, runtime, inside, shape, caller, output_spec, fold,
                       len(checks.calibration), task="segmentation")  # fmt: skip
        write_labels(stage, keras_run.class_names)
        write_card(stage, card)
        expected = MaskPredictor(_keras_forward(reference, prep), keras_run.class_names, prep,
                                 channels, keras_run.path, size=size)  # fmt: skip
        artifact_run = load_artifact(stage)
        quantized = quantize is not None
        parity = mask_parity(artifact_run, expected, checks, tolerance=tolerance,
                             min_agreement=min_agreement, quantized=quantized)  # fmt: skip
        finish_card(stage, card, parity, artifact, started, format)
    return ExportResult(out, out / filename, card)


def _keras_forward(model: keras.Model, prep) -> Callable[[np.ndarray], np.ndarray]:
    from resnetkit.data.pipeline import normalize

    return lambda x: keras.ops.convert_to_numpy(model(normalize(x, prep), training=False))


def mask_checks(
    predictor: MaskPredictor, data: str | None, count: int, calibration: int, seed: int = 0
) -> MaskChecks:
    """``count`` validation pairs (else test pairs) of the run's data or ``data``, a seeded
    sample, and ``calibration`` training images."""
    from PIL import Image

    from resnetkit.data.masks import from_mask_folder
    from resnetkit.evaluate.runs import read_run_data

    if predictor.run_dir is None and data is None:
        raise ValueError(
            f"{predictor.path}: not a run directory, so its data is unknown; pass --data "
            "(a segmentation folder) for the parity check"
        )
    source, name, root = read_run_data(predictor.run_dir, data, from_mask_folder,
                                       prefer=("val", "test"), unit="pairs")  # fmt: skip
    split = source.splits[name]
    rng = np.random.default_rng(seed)
    index = np.sort(rng.permutation(len(split))[:count])
    images = [predictor.decode(split.images[i]) for i in index]
    masks = [np.asarray(Image.open(split.masks[i]), np.uint8) for i in index]
    calib = []
    if calibration:
        train = source.splits["train"]
        calib = [predictor.decode(train.images[i])
                 for i in rng.permutation(len(train))[:calibration]]  # fmt: skip
    return MaskChecks(images, masks, f"{root}: {len(images)} pairs of the {name} split", calib)


def mask_parity(
    artifact: MaskPredictor,
    expected: MaskPredictor,
    checks: MaskChecks,
    *,
    tolerance: float,
    min_agreement: float,
    quantized: bool,
) -> dict:
    """The artifact's logits against the Keras model's on the check pairs: figures and a
    verdict (``passed``)."""
    got = artifact.logits(checks.images)
    want = expected.logits(checks.images)
    pairs = list(zip(got, want, strict=True))
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
    same = sum(int((g.argmax(-1) == w.argmax(-1)).sum()) for g, w in zip(got, want, strict=True))
    pixels = sum(m.size for m in checks.masks)
    k = expected.num_classes
    miou = {}
    for name, logits in (("keras", want), ("artifact", got)):
        matrix = sum(confusion(m, g.argmax(-1), k) for m, g in zip(checks.masks, logits,
                                                                   strict=True))  # fmt: skip
        miou[name] = scores(matrix)["miou"]
    figures = {
        "images": len(checks.images),
        "data": checks.description,
        "reference": "the run's Keras model in float32, BatchNorm unfolded",
        "max_abs_diff": diff,
        "pixel_agreement": same / pixels,
        "miou_keras": miou["keras"],
        "miou_artifact": miou["artifact"],
        "miou_change": miou["artifact"] - miou["keras"],
        # what the classification figures are called, so `resnetkit export` prints one line
        "top1_agreement": same / pixels,
        "mean_abs_diff": float(np.mean([np.abs(g - w).mean() for g, w in pairs])),
    }
    if quantized:
        passed = figures["pixel_agreement"] >= min_agreement
        verdict = (f"int8 pixel agreement {figures['pixel_agreement']:.2%} (required >= "
                   f"{min_agreement:.0%}), mIoU change {figures['miou_change']:+.4f}")  # fmt: skip
    else:
        passed = diff <= tolerance
        verdict = f"max abs difference {diff:.2e} (tolerance {tolerance:g})"
    figures.update({"passed": bool(passed), "verdict": verdict,
                    "tolerance" if not quantized else "min_pixel_agreement":
                    tolerance if not quantized else min_agreement})  # fmt: skip
    return figures


def _int8_options(calibration, predictor: MaskPredictor, size, inside: str) -> dict:
    """TFLite converter settings for full-integer int8 (float input and output kept)."""
    import tensorflow as tf

    from resnetkit.data.pipeline import normalize
    from resnetkit.tasks.segment.predictor import resize_image

    if not calibration:
        raise ParityError("int8 quantization needs training images for calibration")
    prep = predictor.prep

    def representative():
        for image in calibration:
            x = resize_image(image, size)[None]
            yield [np.asarray(normalize(x, prep)) if inside == "none" else x]

    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": representative,
        "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    }
