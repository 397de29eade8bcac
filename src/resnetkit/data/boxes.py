"""Detection data: images with boxes and class ids, indexed from the layouts users have.

Layouts, recognised by ``from_box_folder`` (``looks_like_boxes`` says whether a folder is one):

    COCO JSON      annotations/instances_{split}*.json; images under images/, {split}/ or
                   {split}2017/ by ``file_name``
    Pascal VOC     Annotations/*.xml, JPEGImages/*, ImageSets/Main/{train,val,test}.txt
                   (without the lists, every annotation is a training image)
    YOLO txt       images/ + labels/ (or {split}/images + labels), one
                   ``class cx cy w h`` line per box in fractions of the image; class names
                   from classes.txt, obj.names or data.yaml's ``names``

One internal form: per image, boxes (x1, y1, x2, y2) in pixels, class indices 0…K−1 (COCO's
category ids, sorted, are kept to write results in their own ids), and a crowd flag (COCO's
``iscrowd``: ignored in matching, as COCO's evaluation ignores them). Every image and
annotation is checked as it is indexed; faults are collected with their reasons, never
raised mid-epoch: a missing or unreadable image, a box of zero or negative area, a box
outside its image (one that only crosses the border is clipped and kept), an unknown
category or class id. An image with no box is kept: a negative example.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from resnetkit.data.checks import IMAGE_EXTENSIONS, BadImage, read_header
from resnetkit.data.masks import split_off_val
from resnetkit.data.sources import MAX_PIXELS, SPLIT_ALIASES


@dataclass
class BoxSet:
    """One split: image files and, per image, ``[n, 4]`` boxes, ``[n]`` classes and crowd flags."""

    images: list[str]
    boxes: list[np.ndarray]
    classes: list[np.ndarray]
    crowd: list[np.ndarray]
    sizes: list[tuple[int, int]]  # (height, width) of each image

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> BoxSet:
        index = list(index)
        return BoxSet(*([getattr(self, k)[i] for i in index]
                        for k in ("images", "boxes", "classes", "crowd", "sizes")))  # fmt: skip

    def class_counts(self, num_classes: int) -> list[int]:
        """Boxes per class, crowd boxes left out."""
        counts = np.zeros(num_classes, np.int64)
        for c, crowd in zip(self.classes, self.crowd, strict=True):
            np.add.at(counts, c[~crowd], 1)
        return [int(v) for v in counts]


@dataclass
class BoxSource:
    """A detection data set: class names (index = class id), COCO category ids where the
    data has them, splits, and bad images or annotations with their reasons."""

    name: str
    layout: str
    class_names: list[str]
    splits: dict[str, BoxSet]
    category_ids: list[int] | None = None
    bad: list[BadImage] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def looks_like_boxes(root: str | Path) -> str | None:
    """The detection layout of ``root`` ("coco", "voc" or "yolo"), or ``None``."""
    root = Path(root)
    if (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir():
        return "voc"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "yolo"
    for split in SPLIT_ALIASES:
        if (root / split / "images").is_dir() and (root / split / "labels").is_dir():
            return "yolo"
    if (root / "annotations").is_dir() and list((root / "annotations").glob("instances_*.json")):
        return "coco"
    return None


def from_box_folder(root: str | Path, *, val_fraction: float = 0.1, seed: int = 0,
                    max_pixels: int = MAX_PIXELS) -> BoxSource:  # fmt: skip
    """Index a detection folder in any of the module docstring's layouts."""
    root = Path(root)
    layout = looks_like_boxes(root)
    if layout is None:
        raise ValueError(
            f"{root}: not a detection folder (expected annotations/instances_*.json, "
            "Annotations/ + JPEGImages/, or images/ + labels/)"
        )
    reader = {"coco": _coco, "voc": _voc, "yolo": _yolo}[layout]
    names, category_ids, raw = reader(root)
    bad: list[BadImage] = []
    splits = {}
    for split, entries in raw.items():
        kept = BoxSet([], [], [], [], [])
        for entry in entries:
            checked = _check(entry, len(names), max_pixels, bad)
            if checked is not None:
                for key, value in zip(("images", "boxes", "classes", "crowd", "sizes"),
                                      checked, strict=True):  # fmt: skip
                    getattr(kept, key).append(value)
        splits[split] = kept
    source = BoxSource(str(root), layout, names, splits, category_ids, bad)
    if "val" not in source.splits and val_fraction > 0 and "train" in source.splits:
        source.splits["train"], source.splits["val"] = split_off_val(
            source.splits["train"], val_fraction, seed
        )
    if not len(source.splits.get("train") or ()):
        raise ValueError(f"{root}: no usable training image")
    return source


@dataclass
class _Entry:
    """One image as a layout reader found it, before any check."""

    image: Path
    boxes: list[list[float]]  # x1, y1, x2, y2 pixels; YOLO's fractions are converted later
    classes: list[int]
    crowd: list[bool]
    where: list[str]  # per box, what a fault report names (file and annotation)
    fractions: bool = False  # YOLO: boxes in fractions of the image's size
    faults: list[BadImage] = field(default_factory=list)  # what the reader could not parse

    def unreadable(self, where: str, reason: str) -> None:
        self.faults.append(BadImage(where, reason))


def _check(entry: _Entry, num_classes: int, max_pixels: int, bad: list[BadImage]):
    """The entry's checked arrays, or ``None`` (reported in ``bad``) for a bad image."""
    if not entry.image.is_file():
        bad.append(BadImage(str(entry.image), "missing image file"))
        return None
    problem, _ = read_header(str(entry.image), max_pixels)
    if problem:
        bad.append(BadImage(str(entry.image), problem))
        return None
    with Image.open(entry.image) as im:  # the header was read: this cannot fail
        width, height = im.size
    bad += entry.faults
    boxes, classes, crowd = [], [], []
    for box, cls, is_crowd, where in zip(entry.boxes, entry.classes, entry.crowd, entry.where,
                                         strict=True):  # fmt: skip
        x1, y1, x2, y2 = box
        if entry.fractions:
            x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
        fault = _box_fault(x1, y1, x2, y2, width, height, cls, num_classes)
        if fault:
            bad.append(BadImage(where, fault))
            continue
        boxes.append([max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height)])
        classes.append(cls)
        crowd.append(is_crowd)
    return (str(entry.image), np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(classes, np.int32), np.asarray(crowd, bool), (height, width))  # fmt: skip


def _box_fault(x1, y1, x2, y2, width, height, cls, num_classes) -> str | None:
    if not 0 <= cls < num_classes:
        return f"class {cls} is not one of the {num_classes} classes"
    if x2 <= x1 or y2 <= y1:
        return f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has zero or negative area"
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the {width}×{height} image"
    return None


# --- COCO ------------------------------------------------------------------------------------


def _coco(root: Path):
    """Class names and category ids from the first annotation file; images per split."""
    names, ids, out = None, None, {}
    for path in sorted((root / "annotations").glob("instances_*.json")):
        split = SPLIT_ALIASES.get(path.stem.removeprefix("instances_").rstrip("0123456789"))
        if split is None:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a COCO annotation file ({e})") from e
        categories = sorted(data.get("categories", []), key=lambda c: c["id"])
        if ids is None:
            ids = [int(c["id"]) for c in categories]
            names = [str(c["name"]) for c in categories]
        index = {c: i for i, c in enumerate(ids)}
        out[split] = _coco_entries(root, path, split, data, index)
    return names or [], ids, out


def _coco_entries(root: Path, path: Path, split: str, data: dict, index: dict) -> list[_Entry]:
    by_image: dict[int, _Entry] = {}
    for info in data.get("images", []):
        by_image[info["id"]] = _Entry(_coco_image(root, split, info["file_name"]), [], [], [], [])
    for ann in data.get("annotations", []):
        entry = by_image.get(ann.get("image_id"))
        where = f"{path.name}: annotation {ann.get('id')}"
        if entry is None:
            continue  # an annotation of no listed image: COCO's own tools skip it too
        x, y, w, h = ann["bbox"]
        entry.boxes.append([x, y, x + w, y + h])
        # An unknown category becomes an out-of-range class, reported by the check.
        entry.classes.append(index.get(ann["category_id"], -1))
        entry.crowd.append(bool(ann.get("iscrowd", 0)))
        entry.where.append(f"{where} (image {ann['image_id']}, category {ann['category_id']})")
    return list(by_image.values())


def _coco_image(root: Path, split: str, file_name: str) -> Path:
    for folder in ("images", split, f"{split}2017"):
        candidate = root / folder / file_name
        if candidate.exists():
            return candidate
    return root / "images" / file_name  # reported as missing when it is checked


# --- Pascal VOC ------------------------------------------------------------------------------

VOC_DETECTION_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def _voc(root: Path):
    names = _names_file(root) or list(VOC_DETECTION_CLASSES)
    index = {n: i for i, n in enumerate(names)}
    lists = root / "ImageSets" / "Main"
    splits = {}
    for split_file in sorted(lists.glob("*.txt")) if lists.is_dir() else []:
        split = SPLIT_ALIASES.get(split_file.stem)
        if split is not None:
            splits[split] = [s.split()[0] for s in split_file.read_text().split("\n") if s.strip()]
    if not splits:
        splits = {"train": sorted(p.stem for p in (root / "Annotations").glob("*.xml"))}
    out = {s: [_voc_entry(root, stem, index) for stem in stems] for s, stems in splits.items()}
    return names, None, out


def _voc_entry(root: Path, stem: str, index: dict) -> _Entry:
    xml = root / "Annotations" / f"{stem}.xml"
    entry = _Entry(_voc_image(root, stem), [], [], [], [])
    try:
        tree = ET.parse(xml).getroot()
    except (OSError, ET.ParseError) as e:
        entry.unreadable(str(xml), f"unreadable annotation ({e})")
        return entry
    for k, obj in enumerate(tree.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        coords = [float(bb.findtext(t) or "nan") for t in ("xmin", "ymin", "xmax", "ymax")]
        # VOC's corners are 1-based and inclusive: pixels 1…W become 0…W.
        entry.boxes.append([coords[0] - 1, coords[1] - 1, coords[2], coords[3]])
        entry.classes.append(index.get(name, -1))
        entry.crowd.append(False)
        entry.where.append(f"{xml}: object {k} ({name or 'no name'})")
    return entry


def _voc_image(root: Path, stem: str) -> Path:
    for ext in (".jpg", ".jpeg", ".png", ".JPG"):
        candidate = root / "JPEGImages" / f"{stem}{ext}"
        if candidate.exists():
            return candidate
    return root / "JPEGImages" / f"{stem}.jpg"


# --- YOLO ------------------------------------------------------------------------------------


def _yolo(root: Path):
    names = _names_file(root)
    folders = {"train": root} if (root / "images").is_dir() else {
        SPLIT_ALIASES[s]: root / s for s in SPLIT_ALIASES
        if (root / s / "images").is_dir() and SPLIT_ALIASES.get(s)}  # fmt: skip
    out, largest = {}, -1
    for split, folder in folders.items():
        entries = []
        for image in sorted(p for p in (folder / "images").rglob("*") if _is_image(p)):
            label = folder / "labels" / image.relative_to(folder / "images").with_suffix(".txt")
            entry = _yolo_entry(image, label)
            largest = max([largest, *entry.classes])
            entries.append(entry)
        out[split] = entries
    if names is None:
        names = [str(i) for i in range(largest + 1)]
    return names, None, out


def _yolo_entry(image: Path, label: Path) -> _Entry:
    entry = _Entry(image, [], [], [], [], fractions=True)
    if not label.is_file():
        return entry  # no label file: an image with no object, as YOLO reads it
    for k, line in enumerate(label.read_text().splitlines()):
        parts = line.split()
        if not parts:
            continue
        try:
            cls, cx, cy, w, h = int(parts[0]), *map(float, parts[1:5])
        except (ValueError, IndexError):
            entry.unreadable(f"{label}: line {k + 1}", f"not 'class cx cy w h': {line[:40]!r}")
            continue
        entry.boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        entry.classes.append(cls)
        entry.crowd.append(False)
        entry.where.append(f"{label}: line {k + 1}")
    return entry


def _names_file(root: Path) -> list[str] | None:
    """Class names from classes.txt or obj.names (a name per line) or data.yaml's ``names``."""
    for name in ("classes.txt", "obj.names"):
        if (root / name).is_file():
            return [s.strip() for s in (root / name).read_text().splitlines() if s.strip()]
    if (root / "data.yaml").is_file():
        import yaml

        names = (yaml.safe_load((root / "data.yaml").read_text()) or {}).get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list):
            return [str(n) for n in names]
    return None


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
