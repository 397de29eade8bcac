"""The command line: `resnetkit models` and `resnetkit summary`."""

import json

import pytest

from resnetkit.cli import main


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNETKIT_CACHE", str(tmp_path / "cache"))


def test_models_json(capsys):
    assert main(["models", "--format", "json", "--family", "seed"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "seed" and row["total_params"] == 754_058
    assert row["trainable_params"] == 751_370


def test_models_reads_the_shipped_table_without_building_a_model(capsys, monkeypatch):
    import resnetkit.models.zoo as zoo

    def no_building(name):
        raise AssertionError(f"built {name}")

    monkeypatch.setattr(zoo, "measure", no_building)
    assert main(["models", "--family", "wide"]) == 0
    out = capsys.readouterr()
    row = next(line for line in out.out.splitlines() if line.startswith("wrn16_4 "))
    assert "2,748,890" in row
    assert "measuring" not in out.err


def test_no_cache_measures_again_and_prints_the_same_table(capsys):
    assert main(["models", "--family", "tiny"]) == 0
    shipped = capsys.readouterr()
    assert main(["models", "--family", "tiny", "--no-cache"]) == 0
    measured = capsys.readouterr()
    assert "measuring resnet_tiny" in measured.err and "measuring" not in shipped.err
    assert measured.out == shipped.out


def test_summary_of_the_seed(capsys):
    assert main(["summary", "seed", "--input-size", "224", "224", "3", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 754,058" in out
    assert "Trainable params: 751,370" in out
    assert "stage1: stage1_block10_add, stride 4, 64 channels" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "resnet5O"], "'resnet50'"),
        (["summary", "resnet50", "--input-size", "8", "8", "3"], "too small"),
        (["summary", "resnet50", "--num-classes", "0"], "num_classes"),
        (["models", "--family", "cifr"], "unknown family 'cifr'"),
    ],
)
def test_errors_are_one_line_messages(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
