"""A segmentation data set made from real images: Fashion-MNIST items composited onto
textured backgrounds, written in the Pascal VOC layout (``resnetkit data export
fashion-mnist-scenes OUT``).

No segmentation set can be downloaded here, so the scenes are built: each has several items
(real product photos, 28×28 grey) scaled 1–2× and tinted, pasted at random places over a
procedural texture (smoothed noise at several scales, a random colour, sometimes stripes);
later items cover earlier ones. An item covers the scene where its pixels are brighter than
``THRESHOLD`` (shaded by the photo), and exactly there its mask holds its class + 1 (0 is the
background); each item's one-pixel outline is 255 (ignored), as VOC marks object borders.
Training scenes use training items and validation scenes test items, so no item is in both.
Everything follows from ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from resnetkit.data.masks import IGNORE, voc_palette

THRESHOLD = 40  # item pixels (0..255) at least this bright belong to the item
SCALES = (1.0, 2.0)  # item sizes 28 to 56 pixels
ITEMS_PER_SCENE = (2, 4)


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``size``×``size``×3 uint8 background: noise smoothed at three scales, tinted."""
    field = np.zeros((size, size), np.float32)
    for cells, weight in ((4, 0.6), (12, 0.3), (size, 0.1)):
        coarse = rng.random((cells, cells)).astype(np.float32)
        field += weight * np.asarray(
            Image.fromarray(coarse, mode="F").resize((size, size), Image.BILINEAR)
        )
    if rng.random() < 0.3:  # stripes at a random angle
        y, x = np.mgrid[:size, :size]
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        field += 0.25 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    tint = rng.uniform(0.2, 0.8, 3)
    return (255 * np.clip(field[..., None] * tint * 1.2, 0, 1)).astype(np.uint8)


def composite(items: np.ndarray, labels: np.ndarray, rng: np.random.Generator, size: int,
              scales: tuple[float, float] = SCALES):  # fmt: skip
    """One image from a few ``items`` (N, 28, 28) pasted over a texture, and which pasted
    item (1, 2, …; 0 the background) each pixel shows, with each pasted item's label."""
    image = texture(rng, size).astype(np.float32)
    owner = np.zeros((size, size), np.int32)
    pasted = []
    for n in range(rng.integers(ITEMS_PER_SCENE[0], ITEMS_PER_SCENE[1] + 1)):
        k = rng.integers(len(items))
        side = round(28 * rng.uniform(*scales))
        item = np.asarray(Image.fromarray(items[k]).resize((side, side), Image.BILINEAR))
        top, left = rng.integers(-side // 4, size - 3 * side // 4, 2)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + side, size), min(left + side, size)
        patch = item[y0 - top : y1 - top, x0 - left : x1 - left].astype(np.float32)
        inside = patch >= THRESHOLD  # the item is opaque where its mask is, nowhere else
        color = rng.uniform(0.5, 1.0, 3) * 255
        shade = (0.35 + 0.65 * patch / 255.0)[..., None]  # keeps the photo's own detail
        image[y0:y1, x0:x1][inside] = (color * shade)[inside]
        owner[y0:y1, x0:x1][inside] = n + 1
        pasted.append(int(labels[k]))
    return image.astype(np.uint8), owner, pasted


def scene(items: np.ndarray, labels: np.ndarray, rng: np.random.Generator, size: int):
    """One image and its class mask (class + 1 per item pixel, outlines 255)."""
    image, owner, pasted = composite(items, labels, rng, size)
    classes = np.asarray([0, *(c + 1 for c in pasted)], np.uint8)
    return image, with_border(classes[owner])


def boxes_of(owner: np.ndarray, pasted: list[int], min_pixels: int = 16):
    """Each pasted item's box (x1, y1, x2, y2 around its visible pixels) and label; items
    that later ones hide below ``min_pixels`` visible pixels are left out."""
    boxes, classes = [], []
    for n, label in enumerate(pasted, start=1):
        ys, xs = np.nonzero(owner == n)
        if len(ys) >= min_pixels:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
            classes.append(label)
    return boxes, classes


def with_border(mask: np.ndarray) -> np.ndarray:
    """``mask`` with ``IGNORE`` on each item's outline: its pixels with a 4-neighbour of
    another label."""
    edge = np.zeros(mask.shape, bool)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:-1] |= mask[:-1] != mask[1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    out = mask.copy()
    out[edge & (mask > 0)] = IGNORE
    return out


def export_scenes(out: str | Path, *, train: int = 1000, val: int = 200, size: int = 64,
                  seed: int = 0) -> Path:  # fmt: skip
    """Write ``train`` + ``val`` scenes of ``size`` pixels into ``out`` in the VOC layout."""
    from resnetkit.data import load_data

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    fm = load_data("fashion-mnist", val_fraction=0)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    for split, count, source in (("train", train, "train"), ("val", val, "test")):
        data = fm.splits[source]
        items, labels = data.arrays[..., 0], data.labels
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        stems = [f"{split}{i:05d}" for i in range(count)]
        for stem in stems:
            image, mask = scene(items, labels, rng, size)
            Image.fromarray(image).save(out / "JPEGImages" / f"{stem}.jpg", quality=95)
            png = Image.fromarray(mask, mode="P")
            png.putpalette(palette)
            png.save(out / "SegmentationClass" / f"{stem}.png")
        (out / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    names = ["background", *fm.class_names]
    (out / "classes.txt").write_text("\n".join(names) + "\n")
    return out


DETECTION_SCALES = (0.5, 4.0)  # item sizes 14 to 112 pixels: small objects need small anchors


def export_box_scenes(out: str | Path, *, train: int = 1000, val: int = 200, size: int = 128,
                      seed: int = 0) -> Path:  # fmt: skip
    """Write ``train`` + ``val`` detection scenes of ``size`` pixels into ``out`` as COCO
    JSON (``annotations/instances_{train,val}.json``, images under ``{train,val}/``): the
    same compositing, items at 0.5–4× (14 to 112 pixels), a box around each item's visible
    pixels, categories 1–10 for the Fashion-MNIST classes."""
    import json

    from resnetkit.data import load_data
    from resnetkit.files import write_atomic

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    fm = load_data("fashion-mnist", val_fraction=0)
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(fm.class_names)]
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count, source in (("train", train, "train"), ("val", val, "test")):
        data = fm.splits[source]
        items, labels = data.arrays[..., 0], data.labels
        rng = np.random.default_rng([seed, 2 if split == "train" else 3])
        (out / split).mkdir(exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            image, owner, pasted = composite(items, labels, rng, size, DETECTION_SCALES)
            name = f"{split}{i:05d}.jpg"
            Image.fromarray(image).save(out / split / name, quality=95)
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
            for (x1, y1, x2, y2), label in zip(*boxes_of(owner, pasted), strict=True):
                annotations.append({
                    "id": len(annotations) + 1, "image_id": i + 1, "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                })  # fmt: skip
        coco = {"images": images, "annotations": annotations, "categories": categories}
        write_atomic(out / "annotations" / f"instances_{split}.json", json.dumps(coco))
    return out
