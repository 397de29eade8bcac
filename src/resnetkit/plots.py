"""PNG charts drawn with matplotlib (Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

from resnetkit.files import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> None:
    """Write ``fig`` as PNG atomically (or into a binary file object) and close it."""
    if hasattr(path, "write"):
        try:
            fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
        finally:
            _pyplot().close(fig)
        return
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    finally:
        _pyplot().close(fig)


def training_curves(history: list[dict], path: str | Path) -> None:
    """Loss, accuracy and learning rate against epochs (training and validation)."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    present = {k for row in history for k in row}
    score = next((k for k in ("miou", "anchor_f1") if k in present), "accuracy")
    for ax, metric in zip(axes[:2], ("loss", score), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None for v in values):
                label = "validation" if prefix else "training"
                ax.plot(epochs, values, style, marker=".", label=label)
        ax.set_title({"miou": "mean IoU", "anchor_f1": "anchor F1"}.get(metric, metric))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend()
    axes[2].plot(epochs, [row.get("lr") for row in history], marker=".")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    save_figure(fig, path)


def confusion_matrix(
    matrix, class_names: list[str], path: str | Path, *, normalized: bool = False, title: str = ""
) -> None:
    """Rows: true class, columns: predicted class; ``normalized`` divides each row by its
    support, so the diagonal reads as per-class recall."""
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix, dtype=np.float64)
    if normalized:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = min(4 + 0.55 * n, 18)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalized else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = range(n)
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("confusion matrix (normalized)" if normalized else "confusion matrix"))
    if n <= 30:  # numbers stay readable up to about this many classes
        high = m.max() / 2 if m.size else 0
        for i in range(n):
            for j in range(n):
                text = f"{m[i, j]:.2f}" if normalized else f"{int(m[i, j])}"
                color = "white" if m[i, j] > high else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=7)
    save_figure(fig, path)


def reliability_diagram(calibration: dict, path: str | Path, *, title: str = "") -> None:
    """Accuracy against confidence per bin (bars) beside the diagonal of perfect
    calibration; the gap is what the expected calibration error (ECE) averages."""
    plt = _pyplot()
    bins = calibration["bins"]
    fig, (ax, count_ax) = plt.subplots(
        2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = bins[0]["high"] - bins[0]["low"]
    lows = [b["low"] for b in bins]
    accuracy = [b["accuracy"] or 0.0 for b in bins]
    confidence = [b["confidence"] if b["count"] else b["low"] + width / 2 for b in bins]
    ax.bar(lows, accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
    used = [b["count"] > 0 for b in bins]
    ax.bar(
        lows,
        [abs(c - a) if u else 0 for a, c, u in zip(accuracy, confidence, used, strict=True)],
        bottom=[min(a, c) for a, c in zip(accuracy, confidence, strict=True)],
        width=width,
        align="edge",
        color="tab:red",
        alpha=0.3,
        hatch="//",
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(f"{title + ': ' if title else ''}reliability (ECE {calibration['ece']:.4f})")
    count_ax.bar(lows, [b["count"] for b in bins], width=width, align="edge", color="grey")
    count_ax.set_xlabel("confidence (top probability)")
    count_ax.set_ylabel("images")
    save_figure(fig, path)


def pr_curves(curves: dict[str, list[float]], aps: dict[str, float | None], path: str | Path,
              *, title: str = "") -> None:  # fmt: skip
    """Precision against recall, a line per class (COCOeval's 101 recall points)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    recall = [i / 100 for i in range(101)]
    for name, precision in curves.items():
        ap = aps.get(name)
        ax.plot(recall, precision, label=f"{name} ({'–' if ap is None else f'{ap:.3f}'})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or "precision–recall at IoU 0.5 (AP@0.5 per class)")
    if curves:
        ax.legend(fontsize=7, loc="lower left", ncol=2 if len(curves) > 10 else 1)
    save_figure(fig, path)


def image_grid(images: list, titles: list[str], path: str | Path, *, title: str = "") -> None:
    """Images (uint8, grey or RGB) in a grid with a caption under each."""
    plt = _pyplot()
    n = max(len(images), 1)
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles, strict=False):
        grey = image.ndim == 2 or image.shape[-1] == 1
        shown = image.squeeze(-1) if grey and image.ndim == 3 else image
        ax.imshow(shown, cmap="gray" if grey else None, vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8)
    if not images:
        axes.flat[0].text(0.5, 0.5, "nothing to show", ha="center", va="center")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
