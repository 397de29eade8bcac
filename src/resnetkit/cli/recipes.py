"""``resnetkit recipes``: the shipped training recipes, what each is, runs and measured."""

from __future__ import annotations

import argparse

from resnetkit.recipes import Recipe, list_recipes, recipes_dir

FIELDS = ("command", "result")  # printed under each recipe's name and summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipes",
        help="list the shipped training recipes (resnetkit train --recipe NAME)",
        description="The training recipes that ship with resnetkit: what each trains, the "
        "command that runs it and the result it measured. `resnetkit train --recipe NAME` "
        "runs one; `--config FILE` takes any YAML config.",
    )
    p.set_defaults(func=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    print(format_recipes(list_recipes()))
    print(f"\nfiles: {recipes_dir()}")
    return 0


def format_recipes(recipes: list[Recipe]) -> str:
    """Each recipe's name and summary on one line, its command and result indented below."""
    width = max((len(r.name) for r in recipes), default=0)
    label = max(len(f) for f in FIELDS) + 1
    lines = []
    for r in recipes:
        lines.append(f"{r.name:<{width}}  {r.summary}")
        lines += [f"  {f + ':':<{label}} {getattr(r, f)}" for f in FIELDS]
    return "\n".join(lines)
