"""``resnetkit predict`` for a segmentation run: per image a class-index PNG at the image's
own size, a coloured overlay, and each class's share of the pixels; files that cannot be
read are reported and the rest predicted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from resnetkit.data.checks import BadImageError, decode_image
from resnetkit.data.masks import voc_palette
from resnetkit.data.pipeline import normalize
from resnetkit.data.sources import MAX_PIXELS
from resnetkit.files import write_atomic
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.segment.predictor import MaskPredictor


def predict_masks(predictor: MaskPredictor, paths: list[Path], out: str | Path) -> list[dict]:
    """Segment every file of ``paths`` with ``predictor`` (a run's, or an export's:
    ``export.artifacts.load_predictor``) into ``out``; one row per file (``mask``,
    ``overlay``, ``shares``, or ``error``), also written as predictions.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        try:
            image = predictor.decode(path)
        except BadImageError as e:
            rows.append({"file": str(path), "error": str(e)})
            continue
        (mask,) = predictor.predict_arrays([image])
        rows.append(_write(path, image, mask, predictor.class_names, out))
    write_atomic(out / "predictions.json", json.dumps(rows, indent=1))
    return rows


def mask_row(mask: np.ndarray, names: list[str]) -> dict:
    """What ``serve`` answers per image: the class-index mask as a base64 PNG (grey levels
    are class indices), its size and each class's share of the pixels."""
    import base64
    import io

    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    return {
        "mask_png": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "shares": class_shares(mask, names),
    }


def class_shares(mask: np.ndarray, names: list[str]) -> dict[str, float]:
    """Each class's share of the mask's pixels."""
    counts = np.bincount(mask.reshape(-1), minlength=len(names))[: len(names)]
    return {n: round(float(c) / mask.size, 6) for n, c in zip(names, counts, strict=True)}


def _write(path: Path, image: np.ndarray, mask: np.ndarray, names: list[str], out: Path) -> dict:
    palette = voc_palette()
    png = Image.fromarray(mask, mode="P")
    png.putpalette(palette)
    mask_path = out / f"{path.stem}.png"
    png.save(mask_path)
    colours = np.asarray(palette, np.uint8).reshape(256, 3)[mask]
    rgb = image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, axis=-1)
    blend = np.where(mask[..., None] > 0, 0.5 * rgb + 0.5 * colours, rgb).astype(np.uint8)
    overlay_path = out / f"{path.stem}_overlay.png"
    Image.fromarray(blend).save(overlay_path)
    return {
        "file": str(path),
        "mask": str(mask_path),
        "overlay": str(overlay_path),
        "shares": class_shares(mask, names),
    }


def triptychs(model, pairs, prep: Preprocessing, channels: int, out: Path, *,
              count: int = 4, pool: int = 64) -> list[Path]:  # fmt: skip
    """``samples.png`` (the first ``count`` pairs) and ``worst.png`` (the ``count`` of the
    first ``pool`` with the lowest pixel accuracy): image | truth | prediction rows."""
    from resnetkit.data.masks import IGNORE
    from resnetkit.tasks.segment.model import main_logits

    colours = np.asarray(voc_palette(), np.uint8).reshape(256, 3)
    rows = []
    for image_path, mask_path in list(zip(pairs.images, pairs.masks, strict=True))[:pool]:
        image = decode_image(image_path, channels, MAX_PIXELS)
        truth = np.asarray(Image.open(mask_path), np.uint8)
        logits = main_logits(model(normalize(image[None], prep), training=False))
        predicted = np.argmax(np.asarray(logits)[0], axis=-1).astype(np.uint8)
        scored = truth != IGNORE
        accuracy = float((predicted == truth)[scored].mean()) if scored.any() else 1.0
        rgb = image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, axis=-1)
        rows.append((accuracy, np.concatenate([rgb, colours[truth], colours[predicted]], 1)))
    written = []
    for name, picked in (("samples.png", rows[:count]),
                         ("worst.png", sorted(rows, key=lambda r: r[0])[:count])):  # fmt: skip
        if not picked:
            continue
        width = max(r.shape[1] for _, r in picked)
        strips = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                  for _, r in picked]  # fmt: skip
        grid = Image.fromarray(np.concatenate(strips, 0))
        scale = max(1, 256 // max(grid.height // len(picked), 1))
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
        grid.save(out / name)
        written.append(out / name)
    return written
