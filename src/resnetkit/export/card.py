"""What travels beside every exported artifact: ``labels.txt`` and ``model_card.json``.

The card is the artifact's contract: which file it is and which runtime runs it, what the
input must be (dtype, shape, which preprocessing is inside the graph and which is the
caller's), what the output is, the class names, where the weights came from, the run's
metrics, the export parity figures and the library versions that produced it. Prediction and
serving read the card, so an artifact is used exactly as it was checked.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from resnetkit.rundir import RunDir
from resnetkit.versions import versions

if TYPE_CHECKING:
    from resnetkit.tasks.classify.predictor import Classifier

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


def build_card(
    classifier: Classifier,
    source,
    format: str,
    filename: str,
    runtime: str,
    inside: str,
    fold,
    quantize: str | None,
    checks,
) -> dict:
    """The model card of a classifier's export (``checks``: its ``CheckImages``), parity
    figures still to come."""
    from resnetkit.tasks.classify.predict import ends_in_softmax

    model = classifier.model
    prep = classifier.prep
    size, channels = prep.crop_size, classifier.channels
    shape = [None, None, None, channels] if inside == "resize_crop_normalize" else None
    caller = {
        "none": f"resize the shorter side to {prep.resize_size} ({prep.interpolation}, "
        f"antialiased), center-crop {size}×{size}, normalize ({prep.mode})",
        "normalize": f"resize the shorter side to {prep.resize_size} ({prep.interpolation}, "
        f"antialiased) and center-crop {size}×{size}; the graph normalizes",
        "resize_crop_normalize": "nothing: the graph resizes, crops and normalizes",
    }[inside]
    output = {
        "kind": "probabilities" if ends_in_softmax(model) else "logits",
        "shape": [None, classifier.num_classes],
    }
    return card_of(
        model, prep, classifier.class_names, classifier.run_dir, source, format, filename,
        runtime, inside, shape or [None, size, size, channels], caller, output, fold,
        len(checks.calibration) if quantize else 0,
    )  # fmt: skip


def card_of(model, prep, class_names: list[str], run: Path | None, source, format: str,
            filename: str, runtime: str, inside: str, shape: list, caller: str, output: dict,
            fold, calibration: int, task: str = "classification") -> dict:  # fmt: skip
    """The card's fields for any task: the task's own input shape, what the caller must do
    (``caller``) and the output (``output``) are given."""
    config = model.get_config()
    channels = shape[-1]
    return {
        "card_version": CARD_VERSION,
        "task": task,
        "format": format,
        "artifact": filename,
        "runtime": runtime,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": str(source),
        "architecture": {
            "name": config.get("variant", config.get("architecture", model.name)),
            "parameters": int(model.count_params()),
            "input_shape": list(model.input_shape[1:]),
            "trained_dtype_policy": model.dtype_policy.name,
        },
        "weights": _weights_origin(run),
        "input": {
            "name": "image",
            "layout": "NHWC",
            "dtype": "float32" if inside == "none" else "uint8",
            "shape": shape,
            "channels": "grey" if channels == 1 else "RGB" if channels == 3 else channels,
            "preprocessing_inside": inside,
            "caller_must": caller,
        },
        "output": output,
        "preprocessing": prep.to_dict(),
        "classes": class_names,
        "metrics": _run_metrics(run),
        "optimizations": {
            "dtype": "int8 (full integer; float32 input and output)" if calibration else "float32",
            "batchnorm_folded": len(fold.folded),
            "batchnorm_kept": len(fold.kept),
            "calibration_images": calibration,
        },
        "versions": versions(),
    }


def _weights_origin(run: Path | None) -> dict:
    """Where the weights came from, per the run's config."""
    if run is None:
        return {"origin": "a .keras model file (no run directory)"}
    from resnetkit.training.config import load_config

    config = load_config(RunDir(run).config)
    data = config.data.source
    if config.finetune.source:
        origin = f"fine-tuned from {config.finetune.source} on {data}"
    elif config.model.weights:
        origin = f"trained from {config.model.weights} on {data}"
    else:
        origin = f"trained from scratch on {data}"
    return {"origin": origin, "run_dir": str(run)}


def _run_metrics(run: Path | None) -> dict:
    """The run's test metrics from its summary (empty without a run)."""
    summary = RunDir(run).read_summary() if run is not None else {}
    keys = [k for k in summary if k.startswith("test_")] + ["epochs"]
    return {k: summary[k] for k in keys if k in summary}
