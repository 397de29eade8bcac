"""The zoo table: every variant with its measured parameter counts and MACs.

The figures are measured by building each model (no number is typed in by hand). Building
all of them takes about a minute on two CPU cores, so the table is cached in
``$RESNETKIT_CACHE`` (default ``~/.cache/resnetkit``) under a key that hashes the model code
and the Keras version: any change to the architecture code measures everything again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

from resnetkit.cache import cache_dir
from resnetkit.files import write_atomic
from resnetkit.models.builder import ResNet
from resnetkit.models.flops import count_macs, count_params
from resnetkit.models.variants import VARIANTS


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str
    trainable_params: int
    total_params: int
    gmacs: float  # forward, one image at the default input size
    input_size: tuple[int, int, int]
    num_classes: int
    description: str


def measure(name: str) -> ZooEntry:
    """Build ``name`` at its default size and measure it."""
    spec = VARIANTS[name]
    model = ResNet(name)
    trainable, total = count_params(model)
    entry = ZooEntry(
        name=name,
        family=spec.family,
        trainable_params=trainable,
        total_params=total,
        gmacs=count_macs(model).macs / 1e9,
        input_size=tuple(model.input_shape[1:]),
        num_classes=spec.num_classes,
        description=spec.description,
    )
    del model
    keras.backend.clear_session()
    return entry


def _code_key() -> str:
    digest = hashlib.sha256(keras.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def zoo_table(names: list[str] | None = None, *, use_cache: bool = True) -> list[ZooEntry]:
    """Measured entries for ``names`` (default: every variant), from the cache when valid."""
    names = list(VARIANTS) if names is None else names
    path = cache_dir() / f"zoo-{_code_key()}.json"
    cached: dict[str, dict] = {}
    if use_cache and path.is_file():
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            cached = {}  # a damaged cache is measured again
    missing = [n for n in names if n not in cached]
    for i, name in enumerate(missing, 1):
        print(f"measuring {name} ({i}/{len(missing)}; cached afterwards)", file=sys.stderr)
        cached[name] = asdict(measure(name))
    if missing and use_cache:
        _write_atomic(path, json.dumps(cached, indent=1))
    return [ZooEntry(**{**cached[n], "input_size": tuple(cached[n]["input_size"])}) for n in names]


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as e:  # an unwritable cache only costs time
        print(f"warning: could not cache the zoo table in {path}: {e}", file=sys.stderr)
