"""``resnetkit train`` and ``resnetkit finetune``: which library function each calls, with
what, and how ``--resume`` picks the one that began the run (no training happens here)."""

from __future__ import annotations

import importlib

import pytest

from resnetkit.cli import main
from resnetkit.rundir import RunDir
from resnetkit.training.callbacks import RunInterrupted, TrainingDiverged
from resnetkit.training.config import Config, FinetuneConfig, save_config

# The modules themselves: their packages export functions of the same names.
training = importlib.import_module("resnetkit.training.engine")
transfer = importlib.import_module("resnetkit.transfer.finetune")


@pytest.fixture
def calls(monkeypatch):
    """Every call of train() and finetune(), as (function, config, run_dir, resume)."""
    seen = []

    def recorder(name):
        def record(config, run_dir=None, *, resume=False, **_):
            seen.append((name, config, None if run_dir is None else str(run_dir), resume))
            return {}

        return record

    monkeypatch.setattr(training, "train", recorder("train"))
    monkeypatch.setattr(transfer, "finetune", recorder("finetune"))
    return seen


def test_train_calls_the_library_s_train_with_the_flags_as_config(calls, tmp_path):
    run = str(tmp_path / "run")
    argv = ["train", "--model", "resnet_tiny", "--data", "digits", "--epochs", "3"]
    assert main([*argv, "--precision", "auto", "--run-dir", run]) == 0
    ((name, config, run_dir, resume),) = calls
    assert (name, run_dir, resume) == ("train", run, False)
    assert (config.model.name, config.data.source, config.schedule.epochs) == (
        "resnet_tiny",
        "digits",
        3,
    )
    assert config.run.precision == "auto"  # train() resolves it and records the choice


def test_finetune_calls_the_library_s_finetune_with_its_preset(calls, tmp_path):
    run = str(tmp_path / "run")
    argv = ["finetune", "--from", "resnet18.tv_in1k", "--data", "digits", "--run-dir", run]
    assert main([*argv, "--strategy", "linear", "--bn-policy", "train"]) == 0
    ((name, config, run_dir, resume),) = calls
    assert (name, run_dir, resume) == ("finetune", run, False)
    assert config.finetune.source == "resnet18.tv_in1k"
    assert (config.finetune.strategy, config.finetune.bn_policy) == ("linear", "train")


def test_finetune_without_a_source_shows_the_library_s_error(capsys):
    assert main(["finetune", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resnetkit finetune: error: ") and "source" in err


def _saved_run(path, source: str | None) -> str:
    path.mkdir()
    save_config(Config(finetune=FinetuneConfig(source=source)), RunDir(path).config)
    return str(path)


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_resume_dispatches_on_the_run_s_saved_config(calls, tmp_path, command):
    tuned = _saved_run(tmp_path / "tuned", source="resnet18.tv_in1k")
    trained = _saved_run(tmp_path / "trained", source=None)
    assert main([command, "--resume", tuned]) == 0
    assert main([command, "--resume", trained]) == 0
    assert calls == [("finetune", None, tuned, True), ("train", None, trained, True)]


def test_resume_of_a_folder_that_is_no_run_is_a_one_line_error(calls, tmp_path, capsys):
    assert main(["finetune", "--resume", str(tmp_path)]) == 2
    assert "not a resnetkit run directory" in capsys.readouterr().err
    assert calls == []


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (RunInterrupted("SIGTERM"), 143, "Resume with: resnetkit train --resume"),
        (RunInterrupted("SIGINT"), 130, "checkpoint saved"),
        (TrainingDiverged("loss is nan"), 1, "resnetkit train: error: loss is nan"),
    ],
)
def test_stopped_runs_exit_with_their_codes(monkeypatch, tmp_path, capsys, error, code, message):
    def stopped(*args, **kwargs):
        raise error

    monkeypatch.setattr(training, "train", stopped)
    assert main(["train", "--data", "digits", "--run-dir", str(tmp_path / "r")]) == code
    assert message in capsys.readouterr().err
