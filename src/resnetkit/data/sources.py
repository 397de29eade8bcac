"""Data sources: image folders, CSV manifests and arrays, indexed into labelled splits.

Every source becomes a ``DataSource``: class names (one class map for the whole data set, saved
with every run so labels never shift) and ``ImageSet`` splits, each either file paths or an
in-memory uint8 array. Folder and manifest files are checked as they are indexed
(``checks.read_header``); bad files are collected with their reasons, never raised mid-epoch.

Folder layouts:

    root/CLASS/*.jpg                      split into train/val with a seeded stratified split
    root/{train,val,test}/CLASS/*.jpg     predefined splits (``valid``/``validation`` = val)
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resnetkit.data.checks import IMAGE_EXTENSIONS, BadImage, read_header

SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
SPLITS = ("test", "val", "train")  # what a data set may hold, in evaluation's preference
MAX_PIXELS = 89_478_485  # Pillow's default warning threshold (a 3-channel 179 MP image)


@dataclass
class ImageSet:
    """One split: ``labels`` plus either ``paths`` (files) or ``arrays`` (N, H, W, C) uint8."""

    labels: np.ndarray
    paths: list[str] | None = None
    arrays: np.ndarray | None = None
    kinds: np.ndarray | None = None  # per file: checks.NATIVE_KINDS code, 0 = Pillow

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(
            labels=self.labels[index],
            paths=None if self.paths is None else [self.paths[i] for i in index],
            arrays=None if self.arrays is None else self.arrays[index],
            kinds=None if self.kinds is None else self.kinds[index],
        )

    def counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass
class DataSource:
    """A data set: its class names, its splits and the bad files found while indexing it."""

    name: str
    class_names: list[str]
    splits: dict[str, ImageSet]
    bad: list[BadImage] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def validate(self) -> None:
        """A usable classification set: at least two classes, each with a usable image."""
        if self.num_classes < 2:
            raise ValueError(
                f"{self.name}: a classifier needs at least two classes; found "
                f"{self.num_classes} ({', '.join(self.class_names) or 'none'})"
            )
        train = self.splits.get("train")
        if train is None or len(train) == 0:
            raise ValueError(f"{self.name}: no usable training images")
        empty = [
            n
            for n, c in zip(self.class_names, train.counts(self.num_classes), strict=True)
            if c == 0
        ]
        if empty:
            raise ValueError(
                f"{self.name}: no usable training image in class(es) {', '.join(empty)}"
            )


def save_class_map(path: str | Path, class_names: list[str]) -> None:
    Path(path).write_text(json.dumps({"classes": list(class_names)}, indent=1, ensure_ascii=False))


def load_class_map(path: str | Path) -> list[str]:
    data = json.loads(Path(path).read_text())
    names = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: not a resnetkit class map (expected {{'classes': [...]}})")
    return names


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _index_classes(
    root: Path, class_names: list[str], max_pixels: int, bad: list[BadImage]
) -> ImageSet:
    """Every checked image under ``root/CLASS`` for the given classes."""
    paths, labels, kinds = [], [], []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):  # links to folders not followed
            dirnames.sort()
            for filename in sorted(filenames):
                if not _is_image_name(filename):
                    continue
                path = os.path.join(dirpath, filename)
                problem, kind = read_header(path, max_pixels)
                if problem:
                    bad.append(BadImage(path, problem))
                else:
                    paths.append(path)
                    labels.append(label)
                    kinds.append(kind)
    return ImageSet(
        np.asarray(labels, dtype=np.int32), paths=paths, kinds=np.asarray(kinds, dtype=np.int8)
    )


def stratified_split(images: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split per class with a seeded shuffle; each class with ≥ 2 images gives ≥ 1 to val."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(images.labels):
        idx = np.flatnonzero(images.labels == label)
        rng.shuffle(idx)
        n_val = round(len(idx) * val_fraction)
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val_idx.extend(idx[:n_val])
        train_idx.extend(idx[n_val:])
    return (
        images.subset(np.sort(np.asarray(train_idx, dtype=np.int64))),
        images.subset(np.sort(np.asarray(val_idx, dtype=np.int64))),
    )


def from_folder(
    root: str | Path, *, val_fraction: float = 0.1, seed: int = 0, max_pixels: int = MAX_PIXELS
) -> DataSource:
    """Index an image folder (see the module docstring for layouts)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    bad: list[BadImage] = []
    subdirs = {p.name.lower(): p for p in _class_dirs(root)}
    split_dirs = {SPLIT_ALIASES[k]: p for k, p in subdirs.items() if k in SPLIT_ALIASES}
    if "train" in split_dirs:
        class_names = [p.name for p in _class_dirs(split_dirs["train"])]
        splits = {
            split: _index_classes(folder, class_names, max_pixels, bad)
            for split, folder in split_dirs.items()
        }
        for folder in split_dirs.values():
            extra = sorted({p.name for p in _class_dirs(folder)} - set(class_names))
            if extra:
                raise ValueError(
                    f"{folder}: class folder(s) {', '.join(extra)} do not exist in "
                    f"{split_dirs['train']}; every split must use the training classes"
                )
        if "val" not in splits and val_fraction > 0:
            splits["train"], splits["val"] = stratified_split(splits["train"], val_fraction, seed)
    else:
        class_names = [p.name for p in _class_dirs(root)]
        everything = _index_classes(root, class_names, max_pixels, bad)
        train, val = stratified_split(everything, val_fraction, seed)
        splits = {"train": train, "val": val}
    source = DataSource(str(root), class_names, splits, bad)
    return source


def from_manifest(
    path: str | Path, *, val_fraction: float = 0.1, seed: int = 0, max_pixels: int = MAX_PIXELS
) -> DataSource:
    """A CSV with ``path,label`` columns (and optionally ``split``); paths relative to the CSV."""
    path = Path(path)
    with open(path, newline="", encoding="utf8") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path}: manifest needs columns path,label; missing {', '.join(sorted(missing))}"
            )
        rows = list(reader)
    class_names = sorted({r["label"] for r in rows})
    index = {n: i for i, n in enumerate(class_names)}
    bad: list[BadImage] = []
    by_split: dict[str, tuple[list[str], list[int], list[int]]] = {}
    for line, row in enumerate(rows, start=2):
        file = path.parent / row["path"]
        split = SPLIT_ALIASES.get((row.get("split") or "train").strip().lower())
        if split is None:
            raise ValueError(f"{path}:{line}: unknown split {row.get('split')!r}")
        problem, kind = read_header(str(file), max_pixels)
        if problem:
            bad.append(BadImage(str(file), problem))
            continue
        paths, labels, kinds = by_split.setdefault(split, ([], [], []))
        paths.append(str(file))
        labels.append(index[row["label"]])
        kinds.append(kind)
    splits = {
        s: ImageSet(np.asarray(lab, dtype=np.int32), paths=p, kinds=np.asarray(k, dtype=np.int8))
        for s, (p, lab, k) in by_split.items()
    }
    splits.setdefault("train", ImageSet(np.zeros(0, np.int32), paths=[]))
    if "val" not in splits and val_fraction > 0:
        splits["train"], splits["val"] = stratified_split(splits["train"], val_fraction, seed)
    return DataSource(str(path), class_names, splits, bad)


def from_arrays(
    name: str,
    class_names: list[str],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DataSource:
    """Arrays (N, H, W[, C]) uint8 with integer labels."""

    def make(x, y) -> ImageSet:
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.dtype != np.uint8:
            raise ValueError(
                f"{name}: images must be uint8 (N, H, W[, C]); got {x.dtype} {x.shape}"
            )
        y = np.asarray(y, dtype=np.int32).reshape(-1)
        if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() >= len(class_names))):
            raise ValueError(
                f"{name}: {len(y)} labels in 0..{len(class_names) - 1} needed for {len(x)} images"
            )
        return ImageSet(y, arrays=x)

    splits = {"train": make(*train)}
    if test is not None:
        splits["test"] = make(*test)
    if val_fraction > 0:
        splits["train"], splits["val"] = stratified_split(splits["train"], val_fraction, seed)
    return DataSource(name, list(class_names), splits)
