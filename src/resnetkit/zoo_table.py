"""The zoo table that ships with resnetkit (``models/zoo.json``), read without Keras.

Counting every model's parameters and MACs means building every model, which is slow, so
the measured table is generated once (``python -m resnetkit.models.zoo --write``) and
shipped as package data; ``resnetkit models`` reads it at once. A test checks the file
against the built models. This module lives outside ``resnetkit.models``, whose package
imports Keras.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from resnetkit.names import unknown_name_error

TABLE = ("models", "zoo.json")  # inside the resnetkit package
WRITE_COMMAND = "python -m resnetkit.models.zoo --write"
SEGMENTATION_TABLE = ("tasks", "segment", "zoo.json")
SEGMENTATION_WRITE_COMMAND = "python -m resnetkit.tasks.segment.zoo --write"
DETECTION_TABLE = ("tasks", "detect", "zoo.json")
DETECTION_WRITE_COMMAND = "python -m resnetkit.tasks.detect.zoo --write"
# The shipped table of each task.
TABLES = {"classification": TABLE, "segmentation": SEGMENTATION_TABLE,
          "detection": DETECTION_TABLE}  # fmt: skip


@dataclass(frozen=True)
class ZooEntry:
    """One model's measured figures at its default input size."""

    name: str
    family: str
    trainable_params: int
    total_params: int
    gmacs: float  # forward, one image at the default input size
    input_size: tuple[int, int, int]
    num_classes: int
    description: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZooEntry:
        return cls(**{**data, "input_size": tuple(data["input_size"])})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_size": list(self.input_size)}


def table_path(table: tuple[str, ...] = TABLE) -> Path:
    """Where the shipped table is (``--write`` writes it there, in the source tree)."""
    return Path(__file__).parent.joinpath(*table)


def shipped_table(family: str | None = None, table: tuple[str, ...] = TABLE) -> list[ZooEntry]:
    """The shipped entries in the zoo's order, optionally only one family's (``table``:
    the classifiers' by default, or ``SEGMENTATION_TABLE``)."""
    text = resources.files("resnetkit").joinpath(*table).read_text(encoding="utf-8")
    entries = [ZooEntry.from_dict(row) for row in json.loads(text)["models"]]
    families = {e.family for e in entries}
    if family is not None and family not in families:
        raise unknown_name_error("family", family, families)
    return [e for e in entries if family is None or e.family == family]


def table_json(entries: list[ZooEntry], command: str = WRITE_COMMAND) -> str:
    """The text of a shipped table (``models/zoo.json`` by default) for ``entries``."""
    rows = ",\n".join("  " + json.dumps(e.to_dict(), ensure_ascii=False) for e in entries)
    return f'{{\n "generated_by": {json.dumps(command)},\n "models": [\n{rows}\n ]\n}}\n'


def write_measured(names: list[str], measure, table: tuple[str, ...], command: str,
                   path: str | Path | None = None) -> Path:  # fmt: skip
    """Measure every model of ``names`` (``measure(name) -> ZooEntry``) and write the table
    (default: the shipped file of ``table``)."""
    import sys

    from resnetkit.files import write_atomic

    path = Path(path) if path is not None else table_path(table)
    entries = []
    for i, name in enumerate(names, 1):
        print(f"measuring {name} ({i}/{len(names)})", file=sys.stderr)
        entries.append(measure(name))
    write_atomic(path, table_json(entries, command))
    return path


def write_command(argv, *, prog: str, what: str, table: tuple[str, ...], write) -> int:
    """The ``python -m ... --write [--out FILE]`` command that regenerates a shipped table:
    ``write(path)`` measures and writes it, ``what`` says which models."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog, description=f"Measure {what} and write the table resnetkit ships."
    )
    parser.add_argument("--write", action="store_true", help=f"write {'/'.join(table)}")
    parser.add_argument("--out", help="write here instead of the shipped file")
    args = parser.parse_args(argv)
    if not args.write:
        parser.error("nothing to do: pass --write")
    print(f"wrote {write(args.out)}")
    return 0
