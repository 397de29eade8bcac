"""``resnetkit data inspect`` and ``data export``: look at a data set before training on it.

Inspection reports classes and counts per split, image sizes and modes, every bad file with
its reason (headers *and* a full decode), exact duplicate images, duplicates shared between
splits (leakage), and class imbalance. Export writes any source as a PNG folder with
``train/`` and ``test/`` splits, so every data set can also be used as a folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from resnetkit.data.checks import BadImage, decode_image, full_check
from resnetkit.data.sources import MAX_PIXELS, DataSource

IMBALANCE_RATIO = 3.0  # largest/smallest class count that earns a warning


@dataclass
class Inspection:
    name: str
    class_names: list[str]
    counts: dict[str, list[int]]
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    bad: list[BadImage] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)  # within a split
    leaks: list[list[str]] = field(default_factory=list)  # across splits
    problems: list[str] = field(default_factory=list)  # the data set cannot be trained on
    warnings: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.bad or self.problems or self.leaks)


def _probe_file(path: str, max_pixels: int) -> tuple[str | None, str | None, tuple, str]:
    """(content hash, problem, size, mode) of one file, decoding it fully."""
    data = Path(path).read_bytes() if os.path.isfile(path) else None
    problem = full_check(path, max_pixels, data)
    if problem:
        return None, problem, (), ""
    with Image.open(io.BytesIO(data)) as img:
        return hashlib.sha256(data).hexdigest(), None, img.size, img.mode


def inspect_source(source: DataSource, max_pixels: int = MAX_PIXELS) -> Inspection:
    report = Inspection(
        source.name,
        source.class_names,
        {s: images.counts(source.num_classes) for s, images in source.splits.items()},
        bad=list(source.bad),
    )
    owners: dict[str, list[tuple[str, str]]] = defaultdict(list)  # hash -> [(split, item)]
    for split, images in source.splits.items():
        if images.arrays is not None:
            n, h, w, c = images.arrays.shape
            report.sizes[(w, h)] += n
            report.modes[{1: "L", 3: "RGB", 4: "RGBA"}.get(c, f"{c}ch")] += n
            for i, image in enumerate(images.arrays):
                owners[hashlib.sha256(image.tobytes()).hexdigest()].append((split, f"{split}[{i}]"))
            continue
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda p: _probe_file(p, max_pixels), images.paths))
        for path, (digest, problem, size, mode) in zip(images.paths, results, strict=True):
            if problem:
                report.bad.append(BadImage(path, problem))
                continue
            report.sizes[size] += 1
            report.modes[mode] += 1
            owners[digest].append((split, path))
    for group in owners.values():
        if len(group) > 1:
            items = [item for _, item in group]
            if len({split for split, _ in group}) > 1:
                report.leaks.append(items)
            else:
                report.duplicates.append(items)
    try:
        source.validate()
    except ValueError as e:
        report.problems.append(str(e))
    train = report.counts.get("train", [])
    nonzero = [c for c in train if c > 0]
    if nonzero and max(nonzero) > IMBALANCE_RATIO * min(nonzero):
        report.warnings.append(
            f"class imbalance: largest class has {max(nonzero)} training images, smallest "
            f"{min(nonzero)} (consider class weights or balanced sampling)"
        )
    return report


def format_inspection(report: Inspection, limit: int = 20) -> str:
    lines = [f"data set: {report.name}", f"classes: {len(report.class_names)}"]
    splits = list(report.counts)
    width = max([len(n) for n in report.class_names] + [5])
    lines.append("  " + "class".ljust(width) + "".join(s.rjust(10) for s in splits))
    for i, name in enumerate(report.class_names):
        lines.append(
            "  " + name.ljust(width) + "".join(f"{report.counts[s][i]:>10,}" for s in splits)
        )
    lines.append(
        "  " + "total".ljust(width) + "".join(f"{sum(report.counts[s]):>10,}" for s in splits)
    )
    sizes = ", ".join(f"{w}×{h}: {n:,}" for (w, h), n in report.sizes.most_common(5))
    more = f" (+{len(report.sizes) - 5} more sizes)" if len(report.sizes) > 5 else ""
    lines.append(f"image sizes: {sizes or 'none'}{more}")
    lines.append(
        f"modes: {', '.join(f'{m}: {n:,}' for m, n in report.modes.most_common()) or 'none'}"
    )
    lines.append(f"bad files: {len(report.bad)}")
    lines += [f"  {b.path}: {b.reason}" for b in report.bad[:limit]]
    if len(report.bad) > limit:
        lines.append(f"  … and {len(report.bad) - limit} more")
    lines.append(f"exact duplicates within a split: {len(report.duplicates)} groups")
    lines += ["  " + " = ".join(g) for g in report.duplicates[:limit]]
    lines.append(f"duplicates across splits (leakage): {len(report.leaks)} groups")
    lines += ["  " + " = ".join(g) for g in report.leaks[:limit]]
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"problem: {p}" for p in report.problems]
    return "\n".join(lines)


def safe_folder_name(name: str) -> str:
    cleaned = name.replace("/", "_").replace(os.sep, "_").strip().strip(".")
    return cleaned or "_"


def export_png(source: DataSource, out: str | Path) -> Path:
    """Write ``source`` as ``out/{train,val,test}/CLASS/NNNNN.png``; appears whole or not at all."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder")
    folders = [safe_folder_name(n) for n in source.class_names]
    if len(set(folders)) != len(folders):
        raise ValueError(f"class names collide as folder names: {folders}")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        jobs = []
        for split, images in source.splits.items():
            for folder in folders:
                (tmp / split / folder).mkdir(parents=True, exist_ok=True)
            for i in range(len(images)):
                target = tmp / split / folders[images.labels[i]] / f"{i:05d}.png"
                jobs.append((images, i, target))

        def write(job):
            images, i, target = job
            if images.arrays is not None:
                array = images.arrays[i]
                Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(target)
            else:
                Image.fromarray(decode_image(images.paths[i], 3, MAX_PIXELS)).save(target)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, jobs))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
