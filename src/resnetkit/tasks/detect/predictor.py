"""A trained detector ready for uint8 images of any size: each is resized onto the run's
canvas (its longer side to the canvas, as in training), decoded and suppressed inside the
graph (``decode.inference_model``), and its boxes mapped back to the image's own pixels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from resnetkit.data.checks import BadImageError, decode_image
from resnetkit.data.pipeline import normalize
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.files import write_atomic
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.detect.pipeline import resize_onto_canvas
from resnetkit.tasks.detect.predict import PREDICTED, draw_boxes


@dataclass
class BoxPredictor:
    """A detector's final outputs (a run's inference model or an exported artifact) with its
    class names, canvas and preprocessing."""

    forward: Callable[[np.ndarray], dict]  # canvases → {boxes, scores, classes, count}
    class_names: list[str]
    prep: Preprocessing
    channels: int
    canvas: int
    path: Path
    task: str = "detection"
    runtime: str = "keras"
    prepares: bool = False  # the graph resizes, normalizes and pads (uint8 in, own pixels out)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def decode(self, path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """One image file → (H, W, channels) uint8; raises ``BadImageError`` with the reason."""
        return decode_image(str(path), self.channels, max_pixels)

    def on_canvas(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """One uint8 image → the network's input (normalized, longer side resized to the
        canvas, zero-padded below and right, as in training) and its scale."""
        resized, _, scale = resize_onto_canvas(image, np.zeros((0, 4), np.float32), self.canvas)
        x = np.zeros((self.canvas, self.canvas, self.channels), np.float32)
        r = np.asarray(normalize(resized, self.prep))
        x[: r.shape[0], : r.shape[1]] = r
        return x, float(scale)

    def detect(self, image: np.ndarray) -> list[dict]:
        """One uint8 image (H, W, C) → its detections: ``box`` (x1, y1, x2, y2 in its own
        pixels), ``score``, ``class`` (name) and ``class_index``, best first."""
        return self.predict_arrays([image])[0]

    def predict_arrays(self, images: list[np.ndarray], *, batch_size: int = 8) -> list[list]:
        """Each uint8 image's detections (as ``detect``), ``batch_size`` canvases a pass
        (one image a pass when the graph resizes: sizes differ)."""
        out = []
        if self.prepares:
            for image in images:
                out += self._rows(self.forward(image[None]), [image], [1.0])
            return out
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            prepared = [self.on_canvas(image) for image in chunk]
            got = self.forward(np.stack([x for x, _ in prepared]))
            out += self._rows(got, chunk, [scale for _, scale in prepared])
        return out

    def _rows(self, got: dict, images: list[np.ndarray], scales: list[float]) -> list[list]:
        out = []
        for row, (image, scale) in enumerate(zip(images, scales, strict=True)):
            h, w = image.shape[:2]
            n = int(got["count"][row])
            boxes = np.clip(got["boxes"][row, :n] / scale, 0, [w, h, w, h])
            out.append([{"box": [round(float(v), 2) for v in b], "score": round(float(s), 5),
                         "class": self.class_names[int(k)], "class_index": int(k)}
                        for b, s, k in zip(boxes, got["scores"][row, :n],
                                           got["classes"][row, :n], strict=True)])  # fmt: skip
        return out


def load_box_predictor(path: str | Path, model=None) -> BoxPredictor:
    """A detection run directory or ``.keras`` file (``model``: its detector, if loaded
    already) → ``BoxPredictor``, with the run's decoding settings (``detect.*``) where
    there is a run."""
    from resnetkit.data.sources import load_class_map
    from resnetkit.rundir import RunDir
    from resnetkit.tasks import load_model
    from resnetkit.tasks.detect.decode import inference_model

    path = Path(path)
    model = load_model(path) if model is None else model
    config = model.get_config()
    prep = Preprocessing.from_dict(config["preprocessing"])
    model_file = RunDir(path).model if path.is_dir() else path
    class_map = RunDir(model_file.parent).class_map
    names = (load_class_map(class_map) if class_map.is_file()
             else [f"class_{i}" for i in range(int(config["num_classes"]))])  # fmt: skip
    final = inference_model(model, **decoding(path))

    def forward(x: np.ndarray) -> dict:
        return {k: np.asarray(v) for k, v in final(x, training=False).items()}

    return BoxPredictor(forward, names, prep, int(model.input_shape[-1]), prep.crop_size,
                        model_file)  # fmt: skip


def decoding(path: str | Path) -> dict:
    """The run's decoding settings (``detect.score_threshold``, ``top_k``, ``nms_iou``,
    ``detections``); none for a ``.keras`` file (the layer's defaults, torchvision's)."""
    from resnetkit.rundir import RunDir

    path = Path(path)
    if not (path.is_dir() and RunDir(path).config.is_file()):
        return {}
    import yaml  # the config's own loader (training/) sits above tasks/

    saved = yaml.safe_load(RunDir(path).config.read_text(encoding="utf8")) or {}
    keys = ("score_threshold", "top_k", "nms_iou", "detections")
    return {k: v for k, v in (saved.get("detect") or {}).items() if k in keys}


def predict_boxes(predictor: BoxPredictor, paths: list[Path], out: str | Path,
                  min_score: float = 0.3) -> list[dict]:  # fmt: skip
    """Detections of each file, drawn (score ≥ ``min_score``) into ``out/NAME.png``, all in
    ``out/predictions.json``; a file that cannot be read gets its ``error`` and the rest
    are predicted."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        try:
            image = predictor.decode(path)
        except (BadImageError, OSError) as e:
            rows.append({"file": str(path), "error": str(e)})
            continue
        found = predictor.detect(image)
        shown = [d for d in found if d["score"] >= min_score]
        picture = out / f"{Path(path).stem}.png"
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        draw_boxes(pil, [d["box"] for d in shown], [d["class"] for d in shown], PREDICTED,
                   [d["score"] for d in shown]).save(picture)  # fmt: skip
        rows.append({"file": str(path), "detections": found, "picture": str(picture)})
    write_atomic(out / "predictions.json", json.dumps(rows, indent=1))
    return rows
