"""The zoo table shipped as package data (models/zoo.json) against the built models.

A few cheap models are measured in the default suite, every model under ``slow``. After a
change to the architecture code: ``python -m resnetkit.models.zoo --write``.
"""

from __future__ import annotations

import pytest

from resnetkit.models import VARIANTS
from resnetkit.models.zoo import measure, write_table
from resnetkit.zoo_table import WRITE_COMMAND, shipped_table, table_json, table_path

CHEAP = ("resnet_tiny", "resnet8_fast", "resnet20", "plain20")
SHIPPED = {e.name: e for e in shipped_table()}


def test_the_table_has_every_variant_in_order_with_its_registry_fields():
    assert list(SHIPPED) == list(VARIANTS), f"stale table: run {WRITE_COMMAND}"
    for name, entry in SHIPPED.items():
        spec = VARIANTS[name]
        assert (entry.family, entry.num_classes, entry.description) == (
            spec.family,
            spec.num_classes,
            spec.description,
        )


def test_the_file_is_what_write_writes():
    assert table_path().read_text(encoding="utf-8") == table_json(list(SHIPPED.values()))


@pytest.mark.parametrize("name", CHEAP)
def test_shipped_figures_are_the_built_model_s(name):
    assert measure(name) == SHIPPED[name], f"stale table: run {WRITE_COMMAND}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in CHEAP])
def test_shipped_figures_are_the_built_model_s_for_every_model(name):
    assert measure(name) == SHIPPED[name], f"stale table: run {WRITE_COMMAND}"


def test_write_measures_every_model_into_the_given_file(tmp_path, monkeypatch):
    import resnetkit.models.zoo as zoo

    monkeypatch.setattr(zoo, "measure", lambda name: SHIPPED[name])
    out = write_table(tmp_path / "zoo.json")
    assert out.read_text(encoding="utf-8") == table_path().read_text(encoding="utf-8")


def test_a_family_filter_and_a_mistyped_family():
    assert [e.name for e in shipped_table("wide")] == [
        n for n, v in VARIANTS.items() if v.family == "wide"
    ]
    with pytest.raises(ValueError, match=r"unknown family 'cifr'.*'cifar'"):
        shipped_table("cifr")
