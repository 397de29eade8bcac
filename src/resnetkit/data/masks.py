"""Segmentation data: image + class-index mask pairs, indexed from the layouts users have.

Layouts, recognised by ``from_mask_folder`` (``looks_like_masks`` says whether a folder is one):

    Pascal VOC     JPEGImages/*.jpg, SegmentationClass/*.png (palette PNGs, 255 = border),
                   ImageSets/Segmentation/{train,val,test}.txt, optional classes.txt
    image + mask   images/*, masks/*.png with the same file stems (a class index per pixel),
                   or {train,val,test}/images + masks; optional classes.txt
    COCO JSON      annotations/instances_{split}*.json (polygons or RLE, through pycocotools),
                   images in images/, {split}/ or {split}2017/; rendered once into
                   class-index PNGs under the cache (0 = background, crowd regions 255)

255 is the ignore label everywhere. Every pair is checked as it is indexed: a missing or
unreadable image or mask, a mask whose size differs from its image's, a label outside the
classes (other than 255). Bad pairs are collected with their reasons, never raised mid-epoch.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from resnetkit.data.checks import IMAGE_EXTENSIONS, BadImage, read_header
from resnetkit.data.sources import MAX_PIXELS, SPLIT_ALIASES

IGNORE = 255
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


@dataclass
class MaskSet:
    """One split: image files and their mask files, in the same order, and (once checked)
    each mask's pixels per class, 255 left out."""

    images: list[str]
    masks: list[str]
    counts: np.ndarray | None = None  # (pairs, classes)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> MaskSet:
        index = list(index)
        counts = None if self.counts is None else self.counts[index]
        return MaskSet([self.images[i] for i in index], [self.masks[i] for i in index], counts)

    def without_foreground(self) -> list[str]:
        """Images whose masks hold no class but the background (0) and 255."""
        if self.counts is None:
            return []
        return [p for p, c in zip(self.images, self.counts, strict=True) if not c[1:].any()]


@dataclass
class MaskSource:
    """A segmentation data set: class names (index = mask value), splits, bad pairs, and
    the pixels per class of each split (255 left out)."""

    name: str
    layout: str
    class_names: list[str]
    splits: dict[str, MaskSet]
    bad: list[BadImage] = field(default_factory=list)
    pixels: dict[str, list[int]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def looks_like_masks(root: str | Path) -> str | None:
    """The segmentation layout of ``root`` ("voc", "masks" or "coco"), or ``None``."""
    root = Path(root)
    if (root / "SegmentationClass").is_dir() and (root / "JPEGImages").is_dir():
        return "voc"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "masks"
    if any((root / s / "images").is_dir() and (root / s / "masks").is_dir() for s in SPLIT_ALIASES):
        return "masks"
    if (root / "annotations").is_dir() and list((root / "annotations").glob("instances_*.json")):
        return "coco"
    return None


def from_mask_folder(
    root: str | Path, *, val_fraction: float = 0.1, seed: int = 0, max_pixels: int = MAX_PIXELS
) -> MaskSource:
    """Index a segmentation folder in any of the module docstring's layouts."""
    root = Path(root)
    layout = looks_like_masks(root)
    if layout is None:
        raise ValueError(
            f"{root}: not a segmentation folder (expected JPEGImages/ + SegmentationClass/, "
            "images/ + masks/, or annotations/instances_*.json)"
        )
    if layout == "voc":
        pairs, names = _voc_pairs(root), _class_names(root, VOC_CLASSES)
    elif layout == "masks":
        pairs, names = _mask_pairs(root), _class_names(root, None)
    else:
        pairs, names = _coco_pairs(root)
    bad: list[BadImage] = []
    splits, pixels = {}, {}
    for split, (images, masks) in pairs.items():
        checked = _check_pairs(images, masks, max_pixels)
        bad += [BadImage(image, reason) for image, reason, _ in checked if reason]
        good = [k for k, (_, reason, _) in enumerate(checked) if not reason]
        splits[split] = MaskSet(images, masks).subset(good)
        pixels[split] = [checked[k][2] for k in good]
    if names is None:  # no classes.txt: as many classes as the largest label says
        labels = [int(np.flatnonzero(h[:IGNORE]).max()) for hs in pixels.values() for h in hs
                  if h[:IGNORE].any()]  # fmt: skip
        names = [str(i) for i in range(max(2, max(labels, default=0) + 1))]
    source = _with_labels_checked(MaskSource(str(root), layout, list(names), splits, bad), pixels)
    if "val" not in source.splits and val_fraction > 0:
        train, val = split_off_val(source.splits["train"], val_fraction, seed)
        source.splits["train"], source.splits["val"] = train, val
    if not len(source.splits.get("train") or ()):
        raise ValueError(f"{root}: no usable training image with its mask")
    for split, pairs in source.splits.items():
        total = pairs.counts.sum(0) if len(pairs) else np.zeros(source.num_classes)
        source.pixels[split] = [int(v) for v in total]
    return source


def _class_names(root: Path, default) -> list[str] | None:
    path = root / "classes.txt"
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return None if default is None else list(default)


def _voc_pairs(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    lists = root / "ImageSets" / "Segmentation"
    out = {}
    for split in ("train", "val", "test"):
        listing = lists / f"{split}.txt"
        if listing.is_file():
            stems = [s.strip() for s in listing.read_text().splitlines() if s.strip()]
            out[split] = (
                [str(root / "JPEGImages" / f"{s}.jpg") for s in stems],
                [str(root / "SegmentationClass" / f"{s}.png") for s in stems],
            )
    if not out:  # no lists: every mask is a training pair
        masks = sorted((root / "SegmentationClass").glob("*.png"))
        out["train"] = (
            [str(root / "JPEGImages" / f"{m.stem}.jpg") for m in masks],
            [str(m) for m in masks],
        )
    return out


def _mask_pairs(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    folders = {SPLIT_ALIASES[p.name.lower()]: p for p in root.iterdir()
               if p.name.lower() in SPLIT_ALIASES and (p / "images").is_dir()}  # fmt: skip
    folders = folders or {"train": root}
    out = {}
    for split, folder in folders.items():
        images = sorted(p for p in (folder / "images").iterdir() if _is_image(p))
        masks = {p.stem: p for p in (folder / "masks").iterdir() if p.suffix.lower() == ".png"}
        out[split] = (
            [str(p) for p in images],
            [str(masks.get(p.stem, folder / "masks" / f"{p.stem}.png")) for p in images],
        )
    return out


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _check_pairs(images: list[str], masks: list[str], max_pixels: int) -> list:
    """Per pair: (image path, the reason it is bad or ``None``, the mask's label counts)."""
    with ThreadPoolExecutor(4) as pool:
        return list(
            pool.map(lambda pair: _check_pair(*pair, max_pixels), zip(images, masks, strict=True))
        )


def _check_pair(image: str, mask: str, max_pixels: int):
    none = np.zeros(256, np.int64)
    problem, _ = read_header(image, max_pixels)
    if problem:
        return image, problem, none
    if not os.path.exists(mask):
        return image, f"missing mask {mask}", none
    try:
        with Image.open(mask) as m:
            if m.mode not in ("P", "L", "I;16", "I"):
                return image, f"mask {mask} is {m.mode}, not a class-index image", none
            labels = np.asarray(m)
        with Image.open(image) as im:
            width, height = im.size
    except OSError as e:
        return image, f"unreadable mask {mask}: {str(e)[:80]}", none
    if labels.shape != (height, width):
        h, w = labels.shape
        return image, f"mask {mask} is {w}×{h}, its image {width}×{height}", none
    if labels.max(initial=0) > IGNORE:
        return image, f"mask {mask} has label {int(labels.max())} > {IGNORE}", none
    return image, None, np.bincount(labels.reshape(-1).astype(np.int64), minlength=256)


def _with_labels_checked(source: MaskSource, pixels: dict[str, list[np.ndarray]]) -> MaskSource:
    """Move pairs whose masks hold labels outside the classes (other than 255) to ``bad``;
    keep each remaining mask's pixels per class."""
    n = source.num_classes
    for split, histograms in pixels.items():
        keep = []
        for i, h in enumerate(histograms):
            outside = np.flatnonzero(h[n:IGNORE])
            if outside.size:
                label = int(outside[0]) + n
                reason = f"mask label {label} outside 0..{n - 1} (255 = ignore)"
                source.bad.append(BadImage(source.splits[split].images[i], reason))
            else:
                keep.append(i)
        kept = source.splits[split].subset(keep)
        counts = [histograms[i][:n] for i in keep]
        kept.counts = np.stack(counts) if counts else np.zeros((0, n), np.int64)
        source.splits[split] = kept
    return source


def split_off_val(train, val_fraction: float, seed: int):
    """``(train, val)`` of a split with ``subset`` (a MaskSet or a BoxSet), seeded."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = round(len(train) * val_fraction) if len(train) >= 2 else 0
    return train.subset(sorted(order[n_val:])), train.subset(sorted(order[:n_val]))


def _coco_pairs(root: Path) -> tuple[dict[str, tuple[list[str], list[str]]], list[str]]:
    """Render each ``annotations/instances_{split}*.json`` into class-index PNGs (cached by
    the file's hash); the class names are "background" then the categories by id."""
    from resnetkit.cache import cache_dir

    out, names = {}, None
    for path in sorted((root / "annotations").glob("instances_*.json")):
        split = SPLIT_ALIASES.get(path.stem.removeprefix("instances_").rstrip("0123456789"))
        if split is None:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        folder = cache_dir("coco-masks", digest)
        folder.mkdir(parents=True, exist_ok=True)
        images, masks, categories = _render_coco(root, path, split, folder)
        names = names or ["background", *categories]
        out[split] = (images, masks)
    return out, names


def _render_coco(root: Path, path: Path, split: str, folder: Path):
    from pycocotools.coco import COCO

    coco = COCO(str(path))
    ids = sorted(coco.getCatIds())
    index = {c: i + 1 for i, c in enumerate(ids)}
    images, masks = [], []
    for info in coco.loadImgs(sorted(coco.getImgIds())):
        image = _coco_image(root, split, info["file_name"])
        mask_path = folder / f"{info['id']}.png"  # ids are unique, file stems may not be
        if not mask_path.exists():
            mask = np.zeros((info["height"], info["width"]), np.uint8)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=info["id"])):
                area = coco.annToMask(ann).astype(bool)
                mask[area] = IGNORE if ann.get("iscrowd") else index[ann["category_id"]]
            tmp = mask_path.with_suffix(".tmp.png")
            Image.fromarray(mask).save(tmp)
            os.replace(tmp, mask_path)
        images.append(str(image))
        masks.append(str(mask_path))
    return images, masks, [c["name"] for c in coco.loadCats(ids)]


def _coco_image(root: Path, split: str, file_name: str) -> Path:
    for folder in ("images", split, f"{split}2017"):
        candidate = root / folder / file_name
        if candidate.exists():
            return candidate
    return root / "images" / file_name  # reported as missing when it is checked


def format_mask_inspection(source: MaskSource, limit: int = 20) -> str:
    """``data inspect`` of a segmentation set: pairs and class pixels per split, images with
    no foreground, and every bad pair with its reason."""
    splits = list(source.splits)
    width = max([len(n) for n in source.class_names] + [5])
    lines = [f"data set: {source.name} ({source.layout} layout)",
             f"classes: {source.num_classes} (255 = ignore)",
             "pairs: " + ", ".join(f"{s} {len(source.splits[s]):,}" for s in splits),
             "pixels per class:",
             "  " + "class".ljust(width) + "".join(s.rjust(17) for s in splits)]  # fmt: skip
    for i, name in enumerate(source.class_names):
        cells = []
        for s in splits:
            total = sum(source.pixels[s]) or 1
            cells.append(f"{source.pixels[s][i]:,} ({source.pixels[s][i] / total:.0%})".rjust(17))
        lines.append("  " + name.ljust(width) + "".join(cells))
    for s in splits:
        empty = source.splits[s].without_foreground()
        lines.append(f"{s}: {len(empty)} image(s) with no foreground")
        lines += [f"  {p}" for p in empty[:limit]]
    lines.append(f"bad pairs: {len(source.bad)}")
    lines += [f"  {b.path}: {b.reason}" for b in source.bad[:limit]]
    if len(source.bad) > limit:
        lines.append(f"  ... and {len(source.bad) - limit} more")
    return "\n".join(lines)


def voc_palette() -> list[int]:
    """VOC's colour map: class ``i``'s colour from the bits of ``i``; 255 is cream."""
    colors = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors += [r, g, b]
    colors[3 * IGNORE : 3 * IGNORE + 3] = [224, 224, 192]
    return colors
