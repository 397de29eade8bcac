"""PNG charts drawn with matplotlib (Agg: no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

from resnetkit.cache import temporary_sibling


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> None:
    """Write ``fig`` as PNG atomically and close it."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _pyplot().close(fig)


def training_curves(history: list[dict], path: str | Path) -> None:
    """Loss, accuracy and learning rate against epochs (training and validation)."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric in zip(axes[:2], ("loss", "accuracy"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None for v in values):
                label = "validation" if prefix else "training"
                ax.plot(epochs, values, style, marker=".", label=label)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[2].plot(epochs, [row.get("lr") for row in history], marker=".")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    save_figure(fig, path)
