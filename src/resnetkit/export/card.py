"""What travels beside every exported artifact: ``labels.txt`` and ``model_card.json``.

The card is the artifact's contract: which file it is and which runtime runs it, what the
input must be (dtype, shape, which preprocessing is inside the graph and which is the
caller's), what the output is, the class names, where the weights came from, the run's
metrics, the export parity figures and the library versions that produced it. Prediction and
serving read the card, so an artifact is used exactly as it was checked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CARD = "model_card.json"
LABELS = "labels.txt"
CARD_VERSION = 1


def write_labels(folder: Path, class_names: list[str]) -> Path:
    """One class name per line, in output order."""
    bad = [n for n in class_names if "\n" in n or "\r" in n]
    if bad:
        raise ValueError(f"class names cannot contain line breaks: {bad[:3]!r}")
    path = Path(folder) / LABELS
    path.write_text("".join(f"{n}\n" for n in class_names), encoding="utf8")
    return path


def read_labels(folder: Path) -> list[str]:
    return (Path(folder) / LABELS).read_text(encoding="utf8").splitlines()


def write_card(folder: Path, card: dict) -> Path:
    path = Path(folder) / CARD
    path.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf8")
    return path


def read_card(folder: Path) -> dict:
    """The card in ``folder``; raises ``ValueError`` naming the file if it is unusable."""
    path = Path(folder) / CARD
    try:
        card = json.loads(path.read_text(encoding="utf8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: missing (an exported artifact's folder holds it; see `resnetkit export`)"
        ) from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable model card ({e})") from e
    missing = [k for k in ("format", "artifact", "runtime", "input", "output") if k not in card]
    if missing:
        raise ValueError(f"{path}: model card lacks {', '.join(missing)}")
    return card


def file_digest(path: Path) -> dict:
    """Size and SHA-256 of a file, or of every file under a folder (sorted, with names)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    size = 0
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        data = f.read_bytes()
        digest.update(data)
        size += len(data)
    return {"bytes": size, "sha256": digest.hexdigest()}
