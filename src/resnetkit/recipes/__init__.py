"""The training recipes that ship with resnetkit: YAML configs found by name.

Each ``NAME.yaml`` in this package is a config for ``resnetkit train --config`` whose top-level
``recipe`` mapping records what it is (``summary``), how to run it (``command``) and what it
measured (``result``); ``load_config`` drops that mapping. They are package data, so
``resnetkit train --recipe NAME`` works from an installed wheel; the repository's ``configs/``
is a link to this folder. Only the standard library and PyYAML are imported here, so that the
CLI can list the names in ``--help`` without loading TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from resnetkit.names import unknown_name_error

SUFFIX = ".yaml"


@dataclass(frozen=True)
class Recipe:
    """A shipped recipe: its name (the file's stem), file and what the file says of itself."""

    name: str
    path: Path
    summary: str
    command: str
    result: str


def recipes_dir() -> Path:
    """The folder the recipes are installed in (a real directory: pip unpacks wheels)."""
    return Path(str(resources.files("resnetkit.recipes")))


def recipe_names() -> list[str]:
    """The names of the shipped recipes, sorted (reads no file, for ``--help``)."""
    return sorted(p.stem for p in recipes_dir().iterdir() if p.name.endswith(SUFFIX))


def recipe_path(name: str) -> Path:
    """The file of the recipe ``name`` (``fashion_mnist_fast`` or ``fashion_mnist_fast.yaml``).

    An unknown name raises ``ValueError`` naming the closest recipes and all the others.
    """
    stem = name.removesuffix(SUFFIX)
    names = recipe_names()
    if stem not in names:
        raise unknown_name_error("recipe", name, names)
    return recipes_dir() / f"{stem}{SUFFIX}"


def read_recipe(name: str) -> Recipe:
    """The recipe ``name`` with the ``summary``, ``command`` and ``result`` its file records."""
    path = recipe_path(name)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    meta = data.get("recipe") if isinstance(data, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    return Recipe(
        name=path.stem,
        path=path,
        summary=str(meta.get("summary") or ""),
        command=str(meta.get("command") or ""),
        result=str(meta.get("result") or ""),
    )


def list_recipes() -> list[Recipe]:
    """Every shipped recipe, sorted by name."""
    return [read_recipe(name) for name in recipe_names()]
