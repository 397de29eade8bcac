"""The zoo table: every variant with its measured parameter counts and MACs.

The figures are measured by building each model (no number is typed in by hand). The
measured table ships as ``models/zoo.json`` (read by ``resnetkit.zoo_table`` without
Keras); after a change to the architecture code, regenerate it with

    python -m resnetkit.models.zoo --write

``tests/test_cli_zoo.py`` fails while the shipped file and the built models disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras

from resnetkit.files import write_atomic
from resnetkit.models.builder import ResNet
from resnetkit.models.flops import count_macs, count_params
from resnetkit.models.variants import VARIANTS
from resnetkit.zoo_table import (
    TABLE,
    ZooEntry,
    shipped_table,
    table_json,
    table_path,
    write_command,
)

__all__ = ["ZooEntry", "measure", "write_table", "zoo_table"]


def measure(name: str) -> ZooEntry:
    """Build ``name`` at its default size and measure it."""
    spec = VARIANTS[name]
    return measured(ResNet(name), name, spec.family, spec.num_classes, spec.description)


def measured(model, name: str, family: str, num_classes: int, description: str) -> ZooEntry:
    """The table entry of a built model (any task's) at its input size; the Keras session
    is cleared after, so that measuring every model holds one at a time."""
    trainable, total = count_params(model)
    entry = ZooEntry(
        name=name,
        family=family,
        trainable_params=trainable,
        total_params=total,
        gmacs=count_macs(model).macs / 1e9,
        input_size=tuple(int(d) for d in model.input_shape[1:]),
        num_classes=num_classes,
        description=description,
    )
    keras.backend.clear_session()
    return entry


def zoo_table(names: list[str] | None = None, *, remeasure: bool = False) -> list[ZooEntry]:
    """Entries for ``names`` (default: every variant) from the shipped table.

    A name the table lacks is measured; ``remeasure`` measures every name again.
    """
    names = list(VARIANTS) if names is None else names
    known = {} if remeasure else {e.name: e for e in shipped_table()}
    missing = [n for n in names if n not in known]
    for i, name in enumerate(missing, 1):
        print(f"measuring {name} ({i}/{len(missing)})", file=sys.stderr)
        known[name] = measure(name)
    return [known[n] for n in names]


def write_table(path: str | Path | None = None) -> Path:
    """Measure every variant and write the table (default: the shipped file)."""
    path = Path(path) if path is not None else table_path()
    write_atomic(path, table_json(zoo_table(remeasure=True)))
    return path


def main(argv: list[str] | None = None) -> int:
    return write_command(
        argv,
        prog="python -m resnetkit.models.zoo",
        what="every model",
        table=TABLE,
        write=write_table,
    )


if __name__ == "__main__":
    sys.exit(main())
