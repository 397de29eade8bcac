"""``resnetkit export``: a trained model → SavedModel, ONNX, LiteRT or .keras, parity-checked.

    run dir / .keras → float32 copy, BatchNorm folded (fold.py) → [uint8 preprocessing
    in the graph (graph.py)] → Keras' own exporter (model.export(format=...), or save()) →
    the artifact loaded in its own runtime (artifacts.py) → parity against the Keras model
    on real validation images → labels.txt + model_card.json → the folder renamed into place

The artifact is written into a hidden staging folder beside ``out`` and only renamed to
``out`` once the parity check has passed: a failed check removes it and raises
``ParityError`` with the figures, so nothing that failed is left looking valid.

Parity is measured against the run's Keras model (evaluated in float32, BatchNorm unfolded),
on the raw outputs (probabilities for resnetkit's runs): max abs difference <= ``tolerance``
(1e-4) for float artifacts. An int8 LiteRT artifact is judged by top-1 agreement with the
float model on the validation split (>= ``min_agreement``, 99%), its representative data
taken from the run's training split.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from resnetkit.data.prepare import prepare_images
from resnetkit.evaluate.evaluation import run_data
from resnetkit.export.artifacts import load_artifact
from resnetkit.export.card import (
    build_card,
    file_digest,
    write_card,
    write_labels,
)
from resnetkit.export.fold import inference_model
from resnetkit.export.graph import with_preprocessing
from resnetkit.export.runtimes import FORMATS as FORMAT_NAMES
from resnetkit.export.runtimes import QUANTIZATIONS
from resnetkit.rundir import RunDir
from resnetkit.tasks.classify.predictor import Classifier, load_classifier

# format → (Keras' exporter name or None for model.save, file name, runtime)
FORMATS = dict(
    zip(
        FORMAT_NAMES,
        (
            ("tf_saved_model", "saved_model", "tensorflow"),
            ("onnx", "model.onnx", "onnxruntime"),
            ("litert", "model.tflite", "litert"),
            (None, RunDir.MODEL, "keras"),
        ),
        strict=True,
    )
)
# Formats whose runtime can run the antialiased evaluation resize (see graph.py).
RESIZE_INSIDE = ("savedmodel", "keras")


class ParityError(ValueError):
    """The exported artifact does not give the Keras model's answers."""


@dataclass
class CheckImages:
    """Real images for the parity check (and, for int8, calibration)."""

    images: list[np.ndarray]  # uint8 (H, W, C), validation split
    labels: np.ndarray | None  # in the model's class order, when the data's classes match
    description: str
    calibration: list[np.ndarray]  # uint8, training split


@dataclass
class ExportResult:
    out: Path  # the export folder
    artifact: Path
    card: dict


def export_model(
    source: str | Path,
    out: str | Path,
    format: str,
    *,
    include_preprocessing: bool = False,
    quantize: str | None = None,
    fold_bn: bool = True,
    data: str | None = None,
    check_count: int = 256,
    agreement_count: int = 2000,
    calibration_count: int = 200,
    tolerance: float = 1e-4,
    min_agreement: float = 0.99,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export the model of ``source`` (a run directory or a ``.keras`` file) into the folder
    ``out`` and check it; see the module doc. ``data``: the data for the checks (default: the
    run's own data set)."""
    from resnetkit.tasks import saved_task

    task = saved_task(source)
    if task != "classification":
        dense = dict(include_preprocessing=include_preprocessing, quantize=quantize,
                     fold_bn=fold_bn, data=data, check_count=min(check_count, 32),
                     tolerance=tolerance, overwrite=overwrite, log=log)  # fmt: skip
        if task == "detection":
            from resnetkit.export.detection import export_detector

            return export_detector(source, out, format, **dense)
        from resnetkit.export.segmentation import export_segmenter

        return export_segmenter(source, out, format, min_agreement=min_agreement, **dense)
    out = _checked_request(format, quantize, Path(out), overwrite)
    started = time.perf_counter()
    classifier = load_classifier(source)
    checks = check_images(
        classifier,
        data,
        count=max(check_count, agreement_count if quantize else 0),
        calibration=calibration_count if quantize else 0,
    )
    reference, _ = inference_model(classifier.model, fold=False)
    deploy, fold = inference_model(classifier.model, fold=fold_bn)
    x_check = prepare_images(checks.images[:check_count], classifier.prep)
    fold_diff = float(np.abs(_forward(deploy, x_check) - _forward(reference, x_check)).max())
    if fold_diff > tolerance:
        raise ParityError(
            f"BatchNorm folding changed the outputs by {fold_diff:.3g} > {tolerance:g}"
        )
    log(
        f"BatchNorm: {len(fold.folded)} folded into convolutions, {len(fold.kept)} kept "
        f"(max abs difference {fold_diff:.2e})"
    )
    graph, inside = _with_preprocessing(deploy, classifier, format, include_preprocessing, log)

    keras_format, filename, runtime = FORMATS[format]
    with staged(out) as stage:
        artifact = stage / filename
        options = {}
        if quantize == "int8":
            options = _int8_options(classifier, checks.calibration, inside)
        _write_graph(graph, artifact, keras_format, options, classifier.prep.crop_size)
        card = build_card(
            classifier, source, format, filename, runtime, inside, fold, quantize, checks
        )
        write_labels(stage, classifier.class_names)
        write_card(stage, card)

        parity = check_parity(
            load_artifact(stage),
            reference,
            classifier,
            checks,
            check_count=check_count,
            tolerance=tolerance,
            min_agreement=min_agreement,
            quantized=quantize is not None,
            resize_inside=inside == "resize_crop_normalize",
        )
        parity["batchnorm_fold_max_abs_diff"] = fold_diff
        finish_card(stage, card, parity, artifact, started, format)
    return ExportResult(out, out / filename, card)


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A hidden staging folder beside ``out``, renamed to ``out`` when the block succeeds and
    removed when it raises: a failed export leaves nothing that looks valid."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def finish_card(stage: Path, card: dict, parity: dict, artifact: Path, started: float,
                format: str) -> None:  # fmt: skip
    """Record the parity figures in the card; ``ParityError`` when the check failed."""
    card["parity"] = parity
    card["artifact_file"] = file_digest(artifact)
    card["export_seconds"] = round(time.perf_counter() - started, 1)
    if not parity["passed"]:
        raise ParityError(f"{format} artifact failed the parity check: {parity['verdict']}")
    write_card(stage, card)


def _checked_request(format: str, quantize: str | None, out: Path, overwrite: bool) -> Path:
    """Refuse a bad format, quantization or output folder before anything is loaded."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if quantize is not None and (quantize not in QUANTIZATIONS or format != "litert"):
        raise ValueError(
            f"--quantize {quantize}: only 'int8' for --format litert is supported "
            f"(got format {format!r})"
        )
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists; choose a new folder or pass --overwrite")
    _require_packages(format)
    return out


# What each format's exporter and parity check import (the ``export`` extra installs them).
NEEDS = {"onnx": ("onnx", "tf2onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}


def _require_packages(format: str) -> None:
    """An error naming the missing packages and the install command, before any work."""
    import importlib.util

    missing = [m for m in NEEDS.get(format, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"--format {format} needs {', '.join(missing)}, not installed: "
            "pip install 'resnetkit[export]' (in a checkout: pip install -e '.[export]')"
        )


def _with_preprocessing(deploy, classifier, format: str, include: bool, log) -> tuple:
    """(graph, what preprocessing is inside it): uint8 input when ``include``."""
    if not include:
        return deploy, "none"
    resize = format in RESIZE_INSIDE
    if not resize:
        log(
            f"{format}: normalization is inside the graph; the antialiased resize/crop is "
            "not expressible in this runtime and stays with the caller (see model_card.json)"
        )
    graph = with_preprocessing(deploy, classifier.prep, resize=resize)
    return graph, "resize_crop_normalize" if resize else "normalize"


def _write_graph(graph, artifact: Path, keras_format, options: dict, crop_size: int) -> None:
    """Save with Keras' own exporter (``model.save`` for .keras)."""
    # Keras' ONNX exporter refuses a model that was never called (``model._called``), as a
    # functional model built around another one is: one call on a blank image sets it.
    from resnetkit.models.layers import explicit_padding

    blank = [1, *(d or crop_size for d in graph.input_shape[1:])]
    graph(np.zeros(blank, graph.inputs[0].dtype), training=False)
    if keras_format is None:
        graph.save(artifact)
        return
    with warnings.catch_warnings(), explicit_padding():  # Keras' tf2onnx patch: np.object
        warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
        graph.export(str(artifact), format=keras_format, verbose=False, **options)


def check_images(
    classifier: Classifier, data: str | None, *, count: int, calibration: int = 0, seed: int = 0
) -> CheckImages:
    """Validation images for the parity check: the run's validation split (its seed and
    fraction), else its test split; ``count`` of them, a seeded random sample. ``calibration``
    training images for int8 quantization."""
    if classifier.run_dir is None and data is None:
        raise ValueError(
            f"{classifier.path}: not a run directory, so its data is unknown; pass --data "
            "(a folder, a .csv manifest or a data set name) for the parity check"
        )
    source = run_data(classifier.run_dir, data)
    data = data or source.name
    name = next((s for s in ("val", "test") if len(source.splits.get(s, ()))), None)
    if name is None:
        raise ValueError(f"{data}: no validation or test images for the parity check")
    rng = np.random.default_rng(seed)
    split = source.splits[name]
    index = np.sort(rng.permutation(len(split))[:count])
    images = _images(classifier, split, index)
    labels = None
    if source.class_names == classifier.class_names:
        labels = split.labels[index]
    calib: list[np.ndarray] = []
    if calibration:
        train = source.splits["train"]
        calib = _images(classifier, train, rng.permutation(len(train))[:calibration])
    description = f"{data}: {len(images)} images of the {name} split (seeded sample)"
    return CheckImages(images, labels, description, calib)


def _images(classifier: Classifier, split, index: np.ndarray) -> list[np.ndarray]:
    if split.arrays is not None:
        arrays = split.arrays[index]
        if arrays.shape[-1] != classifier.channels:
            if arrays.shape[-1] == 1 and classifier.channels == 3:
                arrays = np.repeat(arrays, 3, axis=-1)
            else:
                raise ValueError(
                    f"the data has {arrays.shape[-1]} channels; the model takes "
                    f"{classifier.channels}"
                )
        return list(arrays)
    return [classifier.decode(split.paths[i]) for i in index]


def check_parity(
    artifact,
    reference: keras.Model,
    classifier: Classifier,
    checks: CheckImages,
    *,
    check_count: int,
    tolerance: float,
    min_agreement: float,
    quantized: bool,
    resize_inside: bool,
) -> dict:
    """Compare ``artifact`` (an ``ArtifactClassifier``) with the float32 Keras ``reference``
    on the check images; the figures and a verdict (``passed``)."""
    images = checks.images if quantized else checks.images[:check_count]
    expected = _forward(reference, prepare_images(images, classifier.prep), batch=128)
    got = artifact.outputs(images, batch_size=128)
    diff = np.abs(got - expected)
    agree = float(np.mean(got.argmax(-1) == expected.argmax(-1)))
    figures = {
        "images": len(images),
        "data": checks.description,
        "reference": "the run's Keras model in float32, BatchNorm unfolded",
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": agree,
    }
    if checks.labels is not None:
        labels = checks.labels[: len(images)]
        figures["accuracy_keras"] = float(np.mean(expected.argmax(-1) == labels))
        figures["accuracy_artifact"] = float(np.mean(got.argmax(-1) == labels))
    if resize_inside:
        # The sample images may already have the model's size (the resize is then skipped):
        # also feed rescaled copies, so the in-graph resize is checked against the host's.
        rescaled = _rescaled(images[:32], classifier.prep.resize_size)
        expected_r = _forward(reference, prepare_images(rescaled, classifier.prep), batch=128)
        diff_r = float(np.abs(artifact.outputs(rescaled) - expected_r).max())
        figures["rescaled_images"] = len(rescaled)
        figures["rescaled_max_abs_diff"] = diff_r
        figures["max_abs_diff"] = max(figures["max_abs_diff"], diff_r)
    if quantized:
        figures["min_top1_agreement"] = min_agreement
        passed = agree >= min_agreement
        verdict = f"int8 top-1 agreement {agree:.2%} (required >= {min_agreement:.0%})"
    else:
        figures["tolerance"] = tolerance
        passed = figures["max_abs_diff"] <= tolerance
        verdict = f"max abs difference {figures['max_abs_diff']:.2e} (tolerance {tolerance:g})"
    figures["passed"] = bool(passed)
    figures["verdict"] = verdict
    return figures


def _rescaled(images: list[np.ndarray], resize_size: int) -> list[np.ndarray]:
    """Each image at two other sizes: larger and non-square (downscaled by the graph), and
    smaller than the resize size where that differs (upscaled by the graph)."""
    from PIL import Image

    out = []
    for im in images:
        h, w, c = im.shape
        pil = Image.fromarray(im[..., 0] if c == 1 else im)
        sizes = [(max(w * 2, resize_size * 2) + 3, max(h * 3, resize_size * 3) // 2)]
        if resize_size > 2:
            sizes.append((resize_size - 1, resize_size + 5))
        for size in sizes:
            a = np.asarray(pil.resize(size, Image.Resampling.BILINEAR))
            out.append(a.reshape(a.shape[0], a.shape[1], c))
    return out


def _forward(model: keras.Model, x: np.ndarray, batch: int = 128) -> np.ndarray:
    """The model's raw outputs for a prepared batch, in float32."""
    outs = [
        keras.ops.convert_to_numpy(model(x[i : i + batch], training=False))
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(outs).astype(np.float32)


def _int8_options(classifier: Classifier, calibration: list[np.ndarray], inside: str) -> dict:
    """TFLite converter settings for full-integer int8 (float input and output kept)."""
    import tensorflow as tf

    if not calibration:
        raise ValueError("int8 quantization needs training images for calibration")
    prepared = prepare_images(calibration, classifier.prep, normalized=inside == "none")

    def representative():
        for x in prepared:
            yield [x[None]]

    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": representative,
        "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    }
