"""Exported artifacts as classifiers: each loaded in its own runtime, used like a run.

``load_artifact`` reads the artifact's ``model_card.json`` and ``labels.txt`` and opens the
file in the runtime the card names (TensorFlow for a SavedModel, onnxruntime for ONNX, the
LiteRT interpreter for ``.tflite``, Keras for ``.keras``). The result offers what
``predict_files`` and the server use from a ``Classifier`` (``class_names``, ``num_classes``,
``channels``, ``decode``, ``predict_arrays``), so one code path serves runs and artifacts,
and the export parity check runs through this same code.

Whatever preprocessing the card says is not inside the graph is done here with the training
pipeline's own functions (``resize_center_crop``, ``normalize``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from resnetkit.data.checks import decode_image
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.export.card import CARD, read_card, read_labels
from resnetkit.export.runtimes import RUNTIMES
from resnetkit.preprocessing import Preprocessing

if TYPE_CHECKING:  # the Keras side loads only when a run or .keras file is asked for
    from resnetkit.tasks.classify.predictor import Predictor
    from resnetkit.tasks.detect.predictor import BoxPredictor
    from resnetkit.tasks.segment.predictor import MaskPredictor

# What the graph itself does to its input: see export.graph.
INSIDE = ("none", "normalize", "resize_crop_normalize", "resize_pad_normalize")


@dataclass
class ArtifactClassifier:
    """An exported artifact with its card, ready to predict uint8 images."""

    path: Path  # the artifact (file or SavedModel folder)
    card: dict
    class_names: list[str]
    runtime: str
    run: Callable[[np.ndarray], np.ndarray]  # one input batch → the graph's output
    run_dir: Path | None = None

    @property
    def prep(self) -> Preprocessing:
        return Preprocessing.from_dict(self.card["preprocessing"])

    @property
    def channels(self) -> int:
        return int(self.card["input"]["shape"][-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def inside(self) -> str:
        """Which preprocessing the graph does itself (``INSIDE``)."""
        return self.card["input"]["preprocessing_inside"]

    def decode(self, path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """One image file → (H, W, channels) uint8; raises ``BadImageError`` with the reason."""
        return decode_image(str(path), self.channels, max_pixels)

    def prepare(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """uint8 images (same size) → this artifact's input batch: the caller's share of the
        preprocessing (none, crop, or crop and normalize)."""
        if self.inside == "resize_crop_normalize":
            return np.stack(images).astype(np.uint8, copy=False)
        from resnetkit.data.prepare import prepare_images

        return prepare_images(images, self.prep, normalized=self.inside == "none")

    def outputs(self, images: list[np.ndarray] | np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """The graph's raw output for uint8 images of any size (probabilities or logits, per
        ``card["output"]["kind"]``). Images that the graph resizes itself go in same-size
        batches; the order of ``images`` is kept."""
        n = len(images)
        out = np.zeros((n, self.num_classes), np.float32)
        if self.inside == "resize_crop_normalize":
            groups: dict[tuple, list[int]] = {}
            for i, im in enumerate(images):
                groups.setdefault(tuple(np.shape(im)), []).append(i)
            batches = [b for idx in groups.values() for b in _chunks(idx, batch_size)]
        else:
            batches = _chunks(list(range(n)), batch_size)
        for index in batches:
            x = self.prepare([images[i] for i in index])
            out[index] = self.run(x)
        return out

    def predict_arrays(
        self, images: list[np.ndarray] | np.ndarray, *, batch_size: int = 64, tta: bool = False
    ) -> np.ndarray:
        """Class probabilities for uint8 images of any size; ``tta`` averages each image with
        its mirror image, as ``Classifier.predict_arrays`` does."""
        if not len(images):
            return np.zeros((0, self.num_classes), np.float32)
        if not tta:
            return self._probabilities(self.outputs(images, batch_size=batch_size))
        if self.inside == "resize_crop_normalize":
            raise ValueError(
                f"{self.path}: --tta needs the crop outside the graph; this artifact resizes and "
                "crops inside it (exported with --include-preprocessing)"
            )
        out = []
        for index in _chunks(list(range(len(images))), batch_size):
            x = self.prepare([images[i] for i in index])
            p = self._probabilities(self.run(x)) + self._probabilities(self.run(x[:, :, ::-1]))
            out.append(p / 2)
        return np.concatenate(out)

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, np.float32)
        if self.card["output"]["kind"] == "probabilities":
            return raw
        e = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def _chunks(index: list[int], size: int) -> list[list[int]]:
    return [index[i : i + size] for i in range(0, len(index), size)]


def find_export(path: str | Path) -> tuple[Path, Path] | None:
    """(folder holding the card, artifact) if ``path`` is an export, else ``None``.

    ``path`` may be the export folder, the artifact file (``.onnx``, ``.tflite``,
    ``.keras``) or the SavedModel folder inside it.
    """
    path = Path(path)
    if path.is_dir() and (path / CARD).is_file():
        folder = path
    elif (path.is_file() or (path / "saved_model.pb").is_file()) and (path.parent / CARD).is_file():
        folder = path.parent
    else:
        return None
    card = read_card(folder)
    artifact = folder / card["artifact"]
    if folder != path and artifact.resolve() != path.resolve():
        return None  # a file beside someone else's card
    return folder, artifact


def is_export(path: str | Path) -> bool:
    """Whether ``path`` names an exported artifact (rather than a run or a .keras model)."""
    path = Path(path)
    if path.suffix.lower() in (".onnx", ".tflite") or (path / "saved_model.pb").is_file():
        return True
    return find_export(path) is not None


def load_artifact(
    path: str | Path, runtime: str | None = None
) -> ArtifactClassifier | MaskPredictor | BoxPredictor:
    """An export folder or artifact → ``ArtifactClassifier`` in the card's runtime.

    ``runtime``: ``None`` for the card's; another name is an error, since each format runs
    in one runtime only.
    """
    found = find_export(path)
    if found is None:
        raise FileNotFoundError(
            f"{path}: no {CARD} beside it; artifacts written by `resnetkit export` carry one "
            "(it records the preprocessing and classes the artifact needs)"
        )
    folder, artifact = found
    card = read_card(folder)
    expected = card["runtime"]
    if runtime is not None and runtime != expected:
        if runtime not in RUNTIMES:
            raise ValueError(f"--runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
        raise ValueError(
            f"{artifact} is a {card['format']} artifact, which runs on {expected}; "
            f"got --runtime {runtime}"
        )
    if card["input"].get("preprocessing_inside") not in INSIDE:
        raise ValueError(f"{folder / CARD}: unknown input.preprocessing_inside")
    names = read_labels(folder)
    classes = int(card["output"].get("classes") or card["output"]["shape"][-1])
    if len(names) != classes:
        raise ValueError(
            f"{folder}: labels.txt names {len(names)} classes but the artifact has {classes}"
        )
    if card.get("task") == "detection":
        return _box_predictor(artifact, card, names, open_runtime(artifact, expected, named=True))
    run = open_runtime(artifact, expected)
    if card.get("task") == "segmentation":
        return _mask_predictor(artifact, card, names, run)
    return ArtifactClassifier(artifact, card, names, expected, run)


def _box_predictor(artifact: Path, card: dict, names: list[str], run) -> BoxPredictor:
    """A detection export as a ``BoxPredictor``: its outputs found by name."""
    from resnetkit.tasks.detect.predictor import BoxPredictor

    channels = card["input"]["shape"][-1]
    prepares = card["input"]["preprocessing_inside"] != "none"
    dtype = np.uint8 if prepares else np.float32

    def forward(x: np.ndarray) -> dict:
        got = run(np.asarray(x, dtype))
        return {key: _output(got, key) for key in ("boxes", "scores", "classes", "count")}

    return BoxPredictor(forward, names, Preprocessing.from_dict(card["preprocessing"]),
                        int(channels), int(card["output"]["canvas"]), artifact,
                        runtime=card["runtime"], prepares=prepares)  # fmt: skip


def _output(outputs: dict, key: str) -> np.ndarray:
    """The output called ``key``; exporters may prefix or suffix the names
    (``StatefulPartitionedCall:0``-style names fall back to Keras' sorted order)."""
    if key in outputs:
        return np.asarray(outputs[key])
    hits = [k for k in outputs if key in k.lower()]
    if len(hits) == 1:
        return np.asarray(outputs[hits[0]])
    raise KeyError(f"the artifact has no output named {key!r}; it has {list(outputs)}")


def _mask_predictor(artifact: Path, card: dict, names: list[str], run) -> MaskPredictor:
    """A segmentation export as a ``MaskPredictor``: the caller's share of the preprocessing
    (normalizing, when the graph does not) is done here."""
    from resnetkit.tasks.segment.predictor import MaskPredictor

    prep = Preprocessing.from_dict(card["preprocessing"])
    height, width, channels = card["input"]["shape"][1:]
    forward = run
    if card["input"]["preprocessing_inside"] == "none":
        from resnetkit.data.pipeline import normalize

        def forward(x):
            return run(np.asarray(normalize(x, prep)))

    size = None if height is None else (int(height), int(width))
    return MaskPredictor(forward, names, prep, int(channels), artifact, size=size,
                         runtime=card["runtime"])  # fmt: skip


def open_runtime(artifact: Path, runtime: str, *,
                 named: bool = False) -> Callable[[np.ndarray], np.ndarray | dict]:  # fmt: skip
    """A function running one batch through ``artifact`` in ``runtime``: its one output, or
    with ``named`` every output by name (a detector's boxes, scores, classes, count)."""
    run = _outputs_by_name(artifact, runtime)
    if named:
        return run
    return lambda x: next(iter(run(x).values()))


def _outputs_by_name(artifact: Path, runtime: str) -> Callable[[np.ndarray], dict]:
    if runtime == "tensorflow":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(artifact))

        def run(x):
            # ``serve``: Keras' export endpoint. Reached through ``loaded`` so that the closure
            # keeps the loaded object, which owns the variables, alive.
            return _numpy(loaded.serve(x))

        return run
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        return lambda x: dict(zip(names, session.run(None, {name: x}), strict=True))
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(artifact), num_threads=_threads())
        runner = interpreter.get_signature_runner()
        (name,) = runner.get_input_details()
        lock = threading.Lock()  # an interpreter runs one batch at a time

        def run(x):
            with lock:
                return {k: np.array(v) for k, v in runner(**{name: x}).items()}

        return run
    if runtime == "keras":
        import keras
        import tensorflow as tf

        import resnetkit.export.graph
        import resnetkit.models
        import resnetkit.tasks.detect.decode  # noqa: F401  (registers resnetkit's layers)

        model = keras.saving.load_model(artifact, compile=False)
        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda x: _numpy(forward(x))
    raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")


def _numpy(out) -> dict:
    """A graph's output (one tensor or a dict of them) as a dict of arrays."""
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return {"output": np.asarray(out)}


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def load_predictor(
    path: str | Path, runtime: str | None = None
) -> Predictor | MaskPredictor | BoxPredictor:
    """The one loader of a trained model, whatever it was saved as: a run directory or
    ``.keras`` file → ``Classifier`` (Keras); an export → ``ArtifactClassifier`` in its
    runtime; a segmenter's run, file or export → ``MaskPredictor``. predict, serve and the
    export parity check use it; evaluate and explain need the Keras model itself and take
    the ``Classifier`` branch (``load_classifier``)."""
    if is_export(path):
        return load_artifact(path, runtime)
    if runtime not in (None, "keras", "tensorflow"):
        raise ValueError(f"--runtime {runtime}: {path} is a run or .keras model, run by Keras")
    from resnetkit.tasks import saved_task

    task = saved_task(path)
    if task == "segmentation":
        from resnetkit.tasks.segment.predictor import load_mask_predictor

        return load_mask_predictor(path)
    if task == "detection":
        from resnetkit.tasks.detect.predictor import load_box_predictor

        return load_box_predictor(path)
    from resnetkit.tasks.classify.predictor import load_classifier

    return load_classifier(path)
