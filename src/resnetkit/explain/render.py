"""Drawing explanations: heatmap overlays, a titled grid, and PNG files for image files.

``overlay`` and ``explanation_grid`` need only NumPy, Pillow and matplotlib, so a report
can draw explanations it already holds without building anything.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from resnetkit.data.checks import BadImage
from resnetkit.files import write_atomic
from resnetkit.plots import _pyplot, save_figure

GRID_MAX = 64  # images drawn in grid.png; a larger grid is unreadable


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    alpha: float = 0.4,
    *,
    cmap: str = "jet",
    min_size: int = 0,
) -> np.ndarray:
    """``heatmap`` (values in [0, 1]) colored by ``cmap`` and blended over ``image`` with
    weight ``alpha`` → (H, W, 3) uint8. Grey images are shown as RGB, an alpha channel is
    dropped. The heatmap is resized (bilinear) to the image; ``min_size`` enlarges a small
    image first (nearest neighbour, whole factors) so that a 28-pixel crop stays visible."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}")
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image: expected uint8 (H, W[, 1|3|4]); got {image.shape} {image.dtype}")
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap: expected a 2-D array; got shape {heatmap.shape}")
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    factor = math.ceil(min_size / min(rgb.shape[:2])) if min_size else 1
    if factor > 1:
        rgb = rgb.repeat(factor, axis=0).repeat(factor, axis=1)
    height, width = rgb.shape[:2]
    if heatmap.shape != (height, width):
        resized = Image.fromarray(heatmap, mode="F").resize((width, height), Image.BILINEAR)
        heatmap = np.asarray(resized)
    import matplotlib

    colors = matplotlib.colormaps[cmap](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colors
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def explanation_grid(
    explanations: Sequence,
    class_names: Sequence[str],
    *,
    alpha: float = 0.4,
    titles: Sequence[str] | None = None,
    columns: int | None = None,
    cmap: str = "jet",
    suptitle: str | None = None,
    min_size: int = 160,
):
    """A matplotlib figure of overlays, each titled "class (probability)" unless
    ``titles`` are given, with a color bar for the heatmap scale. ``min_size`` as in
    ``overlay``: small crops are enlarged so that the heatmap is drawn smoothly. Save it
    with ``resnetkit.plots.save_figure``."""
    if not explanations:
        raise ValueError("explanation_grid: no explanations to draw")
    if titles is not None and len(titles) != len(explanations):
        raise ValueError(f"{len(titles)} titles for {len(explanations)} explanations")
    plt = _pyplot()
    cols = columns or min(len(explanations), 6)
    rows = math.ceil(len(explanations) / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(2.3 * cols + 0.8, 2.5 * rows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(explanations):
            continue
        e = explanations[i]
        picture = overlay(e.image, e.heatmap, alpha, cmap=cmap, min_size=min_size)
        ax.imshow(picture, interpolation="antialiased")
        title = titles[i] if titles is not None else None
        ax.set_title(title or f"{class_names[e.class_index]} ({e.probability:.2f})", fontsize=9)
    scale = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0.0, 1.0))
    bar = fig.colorbar(scale, ax=axes.ravel().tolist(), shrink=0.8, aspect=30)
    bar.set_label("evidence for the class (heatmap)")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def output_names(paths: Sequence[str | Path], reserved: Sequence[str] = ("grid",)) -> list[str]:
    """One PNG file name per input, from its name; repeated names get ``_2``, ``_3``, ...
    (compared case-insensitively, for case-insensitive file systems)."""
    used = {r.lower() for r in reserved}
    names = []
    for path in paths:
        stem = re.sub(r"[^\w.-]+", "_", Path(path).stem).strip("._") or "image"
        name, n = stem, 2
        while name.lower() in used:
            name, n = f"{stem}_{n}", n + 1
        used.add(name.lower())
        names.append(f"{name}.png")
    return names


@dataclass
class ExplainedFile:
    """One input file explained: where its overlay went and what it shows."""

    path: str
    output: Path
    class_index: int
    probability: float
    predicted_index: int


@dataclass
class ExplainFilesResult:
    """``explain_files``' answer: one row per input file, in input order."""

    rows: list[ExplainedFile | BadImage] = field(default_factory=list)
    grid: Path | None = None
    grid_count: int = 0  # images drawn in the grid (at most GRID_MAX)

    @property
    def explained(self) -> list[ExplainedFile]:
        return [r for r in self.rows if isinstance(r, ExplainedFile)]

    @property
    def bad(self) -> list[BadImage]:
        return [r for r in self.rows if isinstance(r, BadImage)]


def explain_files(
    classifier,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    layer: str | None = None,
    class_index: int | None = None,
    method: str = "gradcam",
    alpha: float = 0.4,
    min_size: int = 224,
    batch_size: int = 32,
) -> ExplainFilesResult:
    """Explain image files: one overlay PNG each in ``out_dir`` (named by ``output_names``,
    enlarged to at least ``min_size`` pixels) plus ``grid.png`` of the first ``GRID_MAX``.
    Unreadable files are reported with the reason and the rest still explained (no grid
    when none is readable). Files are read and explained a batch at a time, so memory does
    not grow with their number.
    """
    from resnetkit.explain.gradcam import GradCam, class_targets, explain_batch
    from resnetkit.tasks.classify.predictor import read_images

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}")
    cam = GradCam(classifier.model, layer, method)
    class_targets(class_index, 1, cam.num_classes)  # check it before reading any file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExplainFilesResult()
    shown, titles = [], []
    names = output_names(paths)
    for start in range(0, len(paths), batch_size):
        chunk = [str(p) for p in paths[start : start + batch_size]]
        images, good, bad = read_images(classifier, chunk)
        targets = class_targets(class_index, len(images), cam.num_classes)
        explained = iter(zip(good, explain_batch(cam, classifier, images, targets), strict=True))
        unreadable = iter(bad)
        # read_images keeps the order of ``chunk`` in both lists: walk them side by side.
        next_good = next(explained, None)
        for path, name in zip(chunk, names[start : start + batch_size], strict=True):
            if next_good is None or next_good[0] != path:
                result.rows.append(next(unreadable))
                continue
            e = next_good[1]
            next_good = next(explained, None)
            output = out_dir / name
            buffer = io.BytesIO()
            picture = overlay(e.image, e.heatmap, alpha, min_size=min_size)
            Image.fromarray(picture).save(buffer, format="PNG")
            write_atomic(output, buffer.getvalue())
            result.rows.append(
                ExplainedFile(path, output, e.class_index, e.probability, e.predicted_index)
            )
            if len(shown) < GRID_MAX:
                shown.append(e)
                label = classifier.class_names[e.class_index]
                titles.append(f"{Path(path).name}\n{label} ({e.probability:.2f})")
    if not shown:
        return result  # nothing readable: the rows say why, and there is no grid
    method_name = "Grad-CAM++" if method == "gradcam++" else "Grad-CAM"
    suptitle = f"{method_name}, feature map {cam.feature}"
    fig = explanation_grid(
        shown, classifier.class_names, alpha=alpha, titles=titles, suptitle=suptitle
    )
    result.grid, result.grid_count = out_dir / "grid.png", len(shown)
    save_figure(fig, result.grid)
    return result
