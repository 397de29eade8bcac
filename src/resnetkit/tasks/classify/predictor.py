"""A trained classifier ready to use: its network, class names and preprocessing.

``evaluate``, ``predict``, ``explain`` and ``report`` all start from ``load_classifier``,
which accepts a run directory (its model and class map, see ``RunDir``) or a ``.keras``
file (class names from a class map beside it; ImageNet names for a 1000-class model;
otherwise ``class_0``, ``class_1``, ...). Images are prepared exactly as evaluation data
is in training: decoded by the same Pillow code, resized and center-cropped per the
model's own preprocessing, normalized.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data.checks import BadImage, BadImageError, decode_image
from resnetkit.data.prepare import prepare_images
from resnetkit.data.sources import MAX_PIXELS, load_class_map
from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir
from resnetkit.tasks import load_model
from resnetkit.tasks.classify.predict import ends_in_softmax, probabilities


class Predictor(Protocol):
    """A trained classifier ready for uint8 images, however it was saved: ``Classifier``
    (a run or ``.keras`` file, in Keras) and ``export.artifacts.ArtifactClassifier``
    (SavedModel, ONNX, LiteRT) both are one."""

    class_names: list[str]
    path: Path
    run_dir: Path | None

    @property
    def prep(self) -> Preprocessing: ...

    @property
    def channels(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    def decode(self, path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray: ...

    def predict_arrays(
        self, images: list[np.ndarray] | np.ndarray, *, batch_size: int = 64, tta: bool = False
    ) -> np.ndarray: ...


@dataclass
class Classifier:
    """A loaded model with everything needed to feed it and name its answers."""

    model: keras.Model
    class_names: list[str]
    prep: Preprocessing
    path: Path  # the .keras file
    run_dir: Path | None = None  # set when loaded from a run directory

    @property
    def channels(self) -> int:
        return int(self.model.input_shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def outputs_probabilities(self) -> bool:
        """True when the network ends in softmax (resnetkit's trained runs do)."""
        return ends_in_softmax(self.model)

    def decode(self, path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """One image file → (H, W, channels) uint8; raises ``BadImageError`` with the reason."""
        return decode_image(str(path), self.channels, max_pixels)

    def prepare(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """uint8 images of any size → the network's normalized input batch."""
        return prepare_images(images, self.prep)

    def probabilities(self, x: tf.Tensor, *, tta: bool = False) -> np.ndarray:
        """Class probabilities for a prepared batch (see ``predict.probabilities``)."""
        return probabilities(self.model, x, tta=tta)

    def predict_arrays(
        self, images: list[np.ndarray] | np.ndarray, *, batch_size: int = 64, tta: bool = False
    ) -> np.ndarray:
        """Probabilities for uint8 images of any size, in batches."""
        out = [
            self.probabilities(self.prepare(images[i : i + batch_size]), tta=tta)
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)


def load_classifier(path: str | Path) -> Classifier:
    """A run directory or a ``.keras`` model file → ``Classifier``."""
    path = Path(path)
    run_dir = path if path.is_dir() else None
    model = load_model(path)  # errors name the file at fault
    model_file = RunDir(path).model if run_dir is not None else path
    num_classes = int(model.output_shape[-1])
    class_map = RunDir(model_file.parent).class_map  # beside the model, in or out of a run
    names = _class_names(class_map, num_classes)
    if len(names) != num_classes:
        raise ValueError(
            f"{class_map} names {len(names)} classes but the model has {num_classes} outputs"
        )
    return Classifier(model, names, model_preprocessing(model), model_file, run_dir)


def model_preprocessing(model: keras.Model) -> Preprocessing:
    """The preprocessing stored with a resnetkit model, or the ImageNet default sized to
    its input."""
    prep = getattr(model, "preprocessing", None)
    if prep is not None:
        return prep
    size = model.input_shape[1] or 224
    return Preprocessing(crop_size=size, resize_size=max(size, round(size * 256 / 224)))


def _class_names(class_map: Path, num_classes: int) -> list[str]:
    if class_map.is_file():
        return load_class_map(class_map)
    if num_classes == 1000:
        text = (Path(__file__).parents[1] / "weights" / "imagenet_classes.txt").read_text()
        return text.splitlines()
    return [f"class_{i}" for i in range(num_classes)]


def read_images(
    classifier: Classifier, paths: list[str | Path], max_pixels: int = MAX_PIXELS
) -> tuple[list[np.ndarray], list[str], list[BadImage]]:
    """Decode files: (images, their paths, unreadable files with the reason)."""
    images, good, bad = [], [], []
    for p in paths:
        try:
            images.append(classifier.decode(p, max_pixels))
            good.append(str(p))
        except (BadImageError, OSError) as e:
            bad.append(BadImage(str(p), str(e) or type(e).__name__))
    return images, good, bad


def expand_paths(specs: list[str]) -> list[Path]:
    """Files, folders (every image file inside, recursively, sorted) and glob patterns →
    files. A spec that matches nothing is an error naming it."""
    import glob

    from resnetkit.data.checks import IMAGE_EXTENSIONS

    out: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                raise FileNotFoundError(f"{spec}: folder holds no image files")
            out += found
        elif path.exists():
            out.append(path)  # any file, image or not: unreadable ones are reported later
        elif glob.has_magic(spec):
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not found:
                raise FileNotFoundError(f"{spec}: pattern matches no files")
            out += found
        else:
            raise FileNotFoundError(f"image not found: {spec}")
    return out
