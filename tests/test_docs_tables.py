"""The docs' tables of measured figures are what benchmarks/tables.py generates from the JSON
in benchmarks/results: a figure edited by hand, or a result file left unshown, fails here."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import tables

DOCS = tables.documents()


def _specs() -> set[str]:
    return {m[1] for path in DOCS for m in tables.MARKER.finditer(path.read_text())}


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(tables.ROOT)) for p in DOCS])
def test_committed_tables_equal_what_the_results_generate(path):
    text = path.read_text()
    assert tables.render(text) == text, (
        f"{path.relative_to(tables.ROOT)}: a table differs from benchmarks/results; "
        "run `make docs` (and change figures in the JSON, never in the page)"
    )


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(tables.ROOT)) for p in DOCS])
def test_every_marker_is_closed_and_names_a_table(path):
    text = path.read_text()
    opened = re.findall(r"^<!-- table: (\S+) -->$", text, flags=re.M)
    closed = re.findall(r"^<!-- /table -->$", text, flags=re.M)
    assert len(opened) == len(tables.MARKER.findall(text)) == len(closed)
    for spec in opened:
        assert spec.partition(":")[0] in tables.TABLES, f"{path.name}: unknown table {spec!r}"


def test_a_figure_edited_by_hand_is_put_back(tmp_path):
    text = "before\n<!-- table: transfer -->\nstale\n<!-- /table -->\nafter\n"
    fresh = tables.render(text)
    assert fresh.startswith("before\n<!-- table: transfer -->\n")
    assert fresh.endswith("\n<!-- /table -->\nafter\n") and "stale" not in fresh
    figure = re.search(r"\| (\d+\.\d) \(", fresh).group(1)  # the 10-label scratch median
    edited = fresh.replace(f"| {figure} (", f"| {float(figure) + 10:.1f} (", 1)
    assert edited != fresh and tables.render(edited) == fresh

    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(edited)
    assert tables.stale(tmp_path) == [tmp_path / "README.md"]
    assert tables.update(tmp_path) == [tmp_path / "README.md"]
    assert (tmp_path / "README.md").read_text() == fresh and tables.stale(tmp_path) == []


def test_every_result_file_is_shown_somewhere():
    specs = _specs()
    results = tables.RESULTS
    wanted = {"zoo", "speed", "recipes", "transfer", "serve", "pipeline", "gradients"}
    wanted.add("degradation")
    wanted |= {"search:" + p.stem.rsplit("-", 1)[1] for p in results.glob("*-search-*.json")}
    runs = results.glob("degradation/*/degradation.json")
    wanted |= {"degradation:" + p.parent.name for p in runs}
    wanted |= {"curve:" + p.parent.name for p in results.glob("*/metrics.csv")}
    cards = (results / "export").glob("*.model_card.json")
    wanted |= {"export:" + p.name.rsplit("-", 1)[0] for p in cards}
    notes = json.loads((results / "measurements.json").read_text())["measurements"]
    wanted |= {"measurements:" + m["doc"] for m in notes}
    if (results / "segmentation.json").exists():
        wanted |= {"segmentation:strides", "segmentation:transfer"}
    if any(results.glob("segmentation-speed-*.json")):
        wanted.add("segmentation-speed")
    if (results / "detection.json").exists():
        wanted |= {"detection:coverage", "detection:backbones", "detection:transfer"}
    if any(results.glob("detection-speed-*.json")):
        wanted.add("detection-speed")
    assert wanted - specs == set(), "results no doc shows"
    assert {s.partition(":")[0] for s in specs} <= set(tables.TABLES)


def test_the_speed_benchmark_regenerates_through_the_same_generator():
    source = (tables.HERE / "speed.py").read_text()
    assert "tables.update()" in source
    assert "speed-table:start" not in "".join(p.read_text() for p in DOCS)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(tables.ROOT)) for p in DOCS])
def test_every_link_of_the_docs_resolves(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        assert "shared/" not in target, f"{path.name}: the docs must stand alone ({target})"
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: broken link {target}"
        assert tables.ROOT in linked.parents or linked == tables.ROOT, f"{target} leaves the repo"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{path.name}: no heading for {target}"
