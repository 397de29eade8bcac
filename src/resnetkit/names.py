"""Errors for a mistyped name: the value received and the nearest valid ones."""

from __future__ import annotations

import difflib


def closest_names(name: str, candidates, n: int = 3) -> list[str]:
    """Valid names nearest to a mistyped ``name`` (for error messages)."""
    return difflib.get_close_matches(str(name), list(candidates), n=n, cutoff=0.5)


def unknown_name_error(kind: str, name: str, candidates) -> ValueError:
    """ValueError naming the bad value, the nearest valid ones, and where to see the rest."""
    near = closest_names(name, candidates)
    hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
    return ValueError(f"unknown {kind} {name!r}.{hint} Valid: {', '.join(sorted(candidates))}")
