"""The model and weights registries refuse a name given twice (a dict comprehension would keep
the last row without a word)."""

import dataclasses
import inspect

import pytest

from resnetkit.models import variants
from resnetkit.models.variants import VARIANTS, by_name
from resnetkit.weights import specs
from resnetkit.weights.specs import REGISTRY


def test_a_table_keeps_every_row_in_order():
    rows = list(VARIANTS.values())
    table = by_name("model", rows)
    assert list(table) == [row.name for row in rows]
    assert all(table[row.name] is row for row in rows)


def test_a_second_model_of_the_same_name_is_refused():
    resnet50 = VARIANTS["resnet50"]
    rows = [*VARIANTS.values(), dataclasses.replace(resnet50, depths=(3, 4, 23, 3))]
    with pytest.raises(ValueError, match=r"two model entries are named 'resnet50'"):
        by_name("model", rows)


def test_a_second_weight_spec_of_the_same_name_is_refused():
    spec = REGISTRY["resnet50.tv_in1k"]
    rows = [*REGISTRY.values(), dataclasses.replace(spec, top1=99.0)]
    with pytest.raises(ValueError, match=r"two pretrained weights entries .* 'resnet50.tv_in1k'"):
        by_name("pretrained weights", rows)


@pytest.mark.parametrize(
    ("module", "row", "message"),
    [
        (variants, '        _keras("resnet50_keras", _R50, v2=False),\n', "model.*resnet50_keras"),
        (
            specs,
            '        _tv("resnet18", "tv", "resnet18-f37072fd.pth", 69.758),\n',
            "pretrained weights.*resnet18.tv_in1k",
        ),
    ],
    ids=["models", "weights"],
)
def test_importing_a_registry_with_a_row_twice_fails(module, row, message):
    """The module's own source with one row written twice fails when it runs (is imported)."""
    source = inspect.getsource(module)
    assert source.count(row) == 1, "the row this test doubles has moved: update the test"
    doubled = compile(source.replace(row, row * 2), module.__file__, "exec")
    exec(compile(source, module.__file__, "exec"), {"__name__": module.__name__})  # as shipped
    with pytest.raises(ValueError, match=message):
        exec(doubled, {"__name__": module.__name__})
