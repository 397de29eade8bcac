"""The Python examples of README.md and docs/ run as written and check what they say.

Two kinds of block are collected:

- a ```pycon block is a doctest: each ``>>>`` line runs and what it prints must match the
  lines written under it;
- a ```python block runs as a script; what its comments claim is stated by its ``assert``s
  (or ``pytest.raises``, ``np.testing``), so a wrong claim fails the test, not only a crash.

Each block runs alone, in a fresh working directory. docs/architecture.md describes the code's
design and is left out: its snippets are not meant to run on their own.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md"] + [
    p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "architecture.md"
]
FENCE = re.compile(r"^```(python|pycon)\n(.*?)^```", re.S | re.M)
CHECKS = ("assert", "pytest.raises", "np.testing.")


def blocks() -> list[tuple[str, str, str]]:
    """(id, kind, source) of every Python example, the id being PAGE:LINE."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 2
            found.append((f"{page.relative_to(ROOT)}:{line}", m[1], m[2]))
    return found


BLOCKS = blocks()


@pytest.mark.parametrize(("where", "kind", "source"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_example_runs_and_checks_its_claims(where, kind, source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if kind == "pycon":
        test = doctest.DocTestParser().get_doctest(source, {}, where, where, 0)
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=flags)
        result = runner.run(test, out=report.append)
        assert result.failed == 0, "".join(report)
    else:
        exec(compile(source, where, "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize(("where", "kind", "source"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_example_states_what_it_claims(where, kind, source):
    """A block that only runs would not notice a wrong comment: each one checks something."""
    if kind == "pycon":
        examples = doctest.DocTestParser().get_examples(source)
        assert any(e.want for e in examples), f"{where}: no >>> line shows its output"
    else:
        assert any(check in source for check in CHECKS), f"{where}: nothing is asserted"


def test_the_readme_has_python_examples():
    assert sum(where.startswith("README.md") for where, _, _ in BLOCKS) >= 1
    assert len(BLOCKS) >= 5
