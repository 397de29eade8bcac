"""A trained segmenter ready for uint8 images, however it was saved: a run or ``.keras``
file (Keras) or an exported artifact (SavedModel, ONNX, LiteRT: ``export.artifacts``).

``predict``, ``serve`` and the export parity check use it, so a mask is computed the same
way from a run and from its export. The network sees each image at its own size (same-size
images share a forward pass); an artifact exported at a fixed size (LiteRT) gets the image
resized to that size and its logits resized back, bilinearly, to the image's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnetkit.data.checks import decode_image
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.preprocessing import Preprocessing

# ``forward(batch) -> logits``: a uint8 batch [N, H, W, C] → float32 [N, H, W, classes].
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass
class MaskPredictor:
    """A segmenter's forward pass with its class names and preprocessing."""

    forward: Forward
    class_names: list[str]
    prep: Preprocessing
    channels: int
    path: Path
    run_dir: Path | None = None
    size: tuple[int, int] | None = None  # the fixed (height, width) an artifact takes
    runtime: str = "keras (run)"
    task: str = "segmentation"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def decode(self, path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """One image file → (H, W, channels) uint8; raises ``BadImageError`` with the reason."""
        return decode_image(str(path), self.channels, max_pixels)

    def logits(self, images: list[np.ndarray], *, batch_size: int = 8) -> list[np.ndarray]:
        """Per image, float32 logits [H, W, classes] at the image's own size."""
        out: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(np.shape(image)), []).append(i)
        for shape, index in groups.items():
            for start in range(0, len(index), batch_size):
                chunk = index[start : start + batch_size]
                batch = np.stack([resize_image(images[i], self.size) for i in chunk])
                logits = np.asarray(self.forward(batch), np.float32)
                if self.size is not None and tuple(shape[:2]) != self.size:
                    logits = _resize_logits(logits, shape[:2])
                for i, row in zip(chunk, logits, strict=True):
                    out[i] = row
        return out  # type: ignore[return-value]

    def predict_arrays(self, images: list[np.ndarray], *, batch_size: int = 8) -> list[np.ndarray]:
        """Per image, the class-index mask (uint8, [H, W]) at the image's own size."""
        return [m.argmax(-1).astype(np.uint8) for m in self.logits(images, batch_size=batch_size)]


def resize_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` resized bilinearly (Pillow) to ``size`` (height, width); ``None``: as is."""
    if size is None or image.shape[:2] == tuple(size):
        return image
    from PIL import Image

    c = image.shape[-1]
    pil = Image.fromarray(image[..., 0] if c == 1 else image)
    resized = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return resized.reshape(size[0], size[1], c)


def _resize_logits(logits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    return tf.image.resize(logits, shape, method="bilinear").numpy()


def load_mask_predictor(path: str | Path) -> MaskPredictor:
    """A segmentation run directory or ``.keras`` file → ``MaskPredictor`` (Keras)."""
    import tensorflow as tf

    from resnetkit.data.pipeline import normalize
    from resnetkit.data.sources import load_class_map
    from resnetkit.rundir import RunDir
    from resnetkit.tasks import load_model
    from resnetkit.tasks.segment.model import main_logits

    path = Path(path)
    run_dir = path if path.is_dir() else None
    model = load_model(path)
    prep = Preprocessing.from_dict(model.get_config()["preprocessing"])
    model_file = RunDir(path).model if run_dir is not None else path
    class_map = RunDir(model_file.parent).class_map
    classes = int(model.get_config()["num_classes"])
    names = load_class_map(class_map) if class_map.is_file() else [f"class_{i}" for i in
                                                                    range(classes)]  # fmt: skip
    graph = tf.function(lambda x: main_logits(model(normalize(x, prep), training=False)),
                        reduce_retracing=True)  # fmt: skip
    return MaskPredictor(
        lambda x: graph(tf.constant(x)).numpy(),
        names, prep, int(model.input_shape[-1]), model_file, run_dir,
    )  # fmt: skip
