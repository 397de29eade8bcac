"""RetinaNet's anchors, as torchvision's ``AnchorGenerator`` places them.

Per pyramid level: ``len(ratios) × len(scales)`` base boxes centred on 0 (ratio-major, then
scale; a ratio is height / width; corners rounded to whole pixels), shifted to every
feature pixel ``(x, y) × stride``, row by row, all of a pixel's anchors together. The
stride of a level is the image's size divided by the level's (integer division), so odd
image sizes place anchors as torchvision does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _retinanet_sizes() -> tuple[tuple[int, ...], ...]:
    """torchvision's: 32, 64, …, 512, each at scales 2^0, 2^(1/3), 2^(2/3), truncated."""
    return tuple(tuple(int(x * 2 ** (k / 3)) for k in range(3)) for x in (32, 64, 128, 256, 512))


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor sizes (pixels, one tuple per level P3…P7) and aspect ratios (height / width)."""

    sizes: tuple[tuple[float, ...], ...] = field(default_factory=_retinanet_sizes)
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)

    @property
    def per_location(self) -> int:
        counts = {len(s) for s in self.sizes}
        if len(counts) != 1:
            raise ValueError(f"every level needs as many anchor sizes; got {self.sizes}")
        return counts.pop() * len(self.ratios)

    def base(self, level: int) -> np.ndarray:
        """``[A, 4]`` corner offsets (x1, y1, x2, y2) of level ``level``'s anchors."""
        scales = np.asarray(self.sizes[level], np.float32)
        h = np.sqrt(np.asarray(self.ratios, np.float32))
        w = 1 / h
        ws = (w[:, None] * scales[None, :]).reshape(-1)
        hs = (h[:, None] * scales[None, :]).reshape(-1)
        # np.round, as torch.round: halves to even.
        return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2)

    def to_dict(self) -> dict:
        return {"sizes": [list(s) for s in self.sizes], "ratios": list(self.ratios)}

    @classmethod
    def from_dict(cls, d: dict | None) -> AnchorConfig:
        if not d:
            return cls()
        return cls(tuple(tuple(s) for s in d["sizes"]), tuple(d["ratios"]))


def anchors(config: AnchorConfig, image_hw: tuple[int, int],
            grids: list[tuple[int, int]]) -> np.ndarray:  # fmt: skip
    """``[sum(H·W·A), 4]`` anchors (x1, y1, x2, y2) for an image of ``image_hw`` whose
    pyramid levels have the sizes ``grids``; level by level, in the heads' order."""
    if len(grids) != len(config.sizes):
        raise ValueError(f"{len(grids)} pyramid levels but {len(config.sizes)} anchor sizes")
    out = []
    for level, (gh, gw) in enumerate(grids):
        sy, sx = image_hw[0] // gh, image_hw[1] // gw
        ys, xs = np.meshgrid(np.arange(gh) * sy, np.arange(gw) * sx, indexing="ij")
        shifts = np.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4).astype(np.float32)
        out.append((shifts + config.base(level)[None]).reshape(-1, 4))
    return np.concatenate(out, axis=0)
