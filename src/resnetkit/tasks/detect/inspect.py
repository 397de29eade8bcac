"""``resnetkit data inspect`` of a detection set: what a detector will make of it.

Beside counts and faults, it answers the question users find out only after training: do
the anchors fit the boxes? It shows each box's size on the canvas a run would use against
the anchor sizes of each pyramid level, and the **anchor coverage** (coverage.py) both for
the anchors a run would choose and for torchvision's, warning with the names of the
classes under 95%.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from resnetkit.data.boxes import BoxSource
from resnetkit.tasks.detect.anchors import AnchorConfig
from resnetkit.tasks.detect.coverage import (
    TORCHVISION,
    Coverage,
    canvas_boxes,
    choose_anchor_sizes,
    coverage,
    doubling_sizes,
)
from resnetkit.tasks.detect.task import choose_canvas, pyramid_grids

GOOD_COVERAGE = 0.95  # classes below this share of covered boxes are named in a warning


@dataclass
class BoxInspection:
    """The figures ``format_box_inspection`` prints."""

    source: BoxSource
    model: str
    canvas: int
    canvas_why: str
    anchor_line: str  # which anchors a run would choose, and why
    levels: list[float]  # each level's smallest anchor, P3 first
    sizes: np.ndarray  # √(w·h) of every training box on the canvas
    chosen: Coverage
    torchvision: Coverage
    warnings: list[str] = field(default_factory=list)


def inspect_boxes(source: BoxSource, model: str, canvas: int | None = None,
                  positive_iou: float = 0.5) -> BoxInspection:  # fmt: skip
    """Inspect ``source`` for a run of ``model`` (its pyramid sets the anchor grids) on
    ``canvas`` (None: what a run would choose)."""
    train = source.splits["train"]
    side, channels, median_side = choose_canvas(train, canvas)
    why = "--canvas" if canvas else f"the images' median longer side {median_side:g} px"
    grids = pyramid_grids(model, side, channels)
    ratios = AnchorConfig().ratios
    chosen_config, _, line = choose_anchor_sizes(train, side, grids, ratios, positive_iou)
    names = source.class_names
    chosen = coverage(train, names, chosen_config, side, grids, positive_iou)
    default = AnchorConfig(doubling_sizes(TORCHVISION, len(grids)), ratios)
    tv = coverage(train, names, default, side, grids, positive_iou)
    boxes, _ = canvas_boxes(train, side)
    sizes = np.sqrt(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)) if len(boxes) else boxes[:, 0]
    levels = [float(s[0]) for s in chosen_config.sizes]
    report = BoxInspection(source, model, side, why, line, levels, sizes, chosen, tv)
    low = chosen.low(GOOD_COVERAGE)
    if low:
        listed = ", ".join(f"{k} ({chosen.per_class[k]:.1%})" for k in low)
        report.warnings.append(
            f"anchor coverage below {GOOD_COVERAGE:.0%} at IoU ≥ {positive_iou:g} for: {listed}. "
            "Their boxes get no anchor as positives except through the low-quality match: "
            "set detect.anchor_sizes, a larger detect.canvas, or more anchor ratios"
        )
    return report


def size_histogram(sizes: np.ndarray, levels: list[float]) -> list[tuple[str, int]]:
    """Boxes per size band: below the smallest anchor, one band per level (its smallest
    anchor up to the next level's), and above the largest level."""
    edges = [*levels, levels[-1] * 2]
    rows = [(f"< {edges[0]:g} px", int((sizes < edges[0]).sum()))]
    for k in range(len(levels)):
        band = (sizes >= edges[k]) & (sizes < edges[k + 1])
        rows.append((f"{edges[k]:g}–{edges[k + 1]:g} px (P{k + 3})", int(band.sum())))
    rows.append((f"≥ {edges[-1]:g} px", int((sizes >= edges[-1]).sum())))
    return rows


def format_box_inspection(report: BoxInspection, limit: int = 20) -> str:
    source = report.source
    splits = list(source.splits)
    width = max([len(n) for n in source.class_names] + [5])
    images = []
    for s in splits:
        empty = sum(1 for b in source.splits[s].boxes if len(b) == 0)
        images.append(f"{s} {len(source.splits[s]):,} ({empty:,} without boxes)")
    crowd = sum(int(np.sum(c)) for split in source.splits.values() for c in split.crowd)
    lines = [f"data set: {source.name} ({source.layout} layout)",
             f"classes: {source.num_classes}",
             "images: " + ", ".join(images),
             f"crowd boxes (ignored in matching and scoring): {crowd:,}",
             "boxes per class:",
             "  " + "class".ljust(width) + "".join(s.rjust(10) for s in splits)]  # fmt: skip
    counts = {s: source.splits[s].class_counts(source.num_classes) for s in splits}
    for i, name in enumerate(source.class_names):
        lines.append("  " + name.ljust(width) + "".join(f"{counts[s][i]:>10,}" for s in splits))
    lines.append(f"canvas: {report.canvas}×{report.canvas} ({report.canvas_why})")
    lines.append(f"training box sizes on the canvas, √(w·h), against {report.model}'s levels:")
    lines += [f"  {band:<22}{n:>8,}" for band, n in size_histogram(report.sizes, report.levels)]
    lines.append(report.anchor_line)
    c, tv = report.chosen, report.torchvision
    lines.append(f"anchor coverage at IoU ≥ {c.threshold:g}: {c.covered:.1%} of {c.boxes:,} "
                 f"training boxes (torchvision's anchors: {tv.covered:.1%})")  # fmt: skip
    for name in source.class_names:
        if name in c.per_class:
            lines.append(f"  {name.ljust(width)} {c.per_class[name]:>7.1%} "
                         f"(torchvision's {tv.per_class[name]:.1%})")  # fmt: skip
    lines.append(f"bad images or annotations: {len(source.bad)}")
    lines += [f"  {b.path}: {b.reason}" for b in source.bad[:limit]]
    if len(source.bad) > limit:
        lines.append(f"  ... and {len(source.bad) - limit} more")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)
