"""Time budgets (schedule.budget_minutes), run.precision=auto and TensorFlow's kernels."""

import os
import subprocess
import sys

import pytest
import yaml

from resnetkit.training import budget, hardware


def test_plan_fits_the_epochs_and_keeps_time_for_evaluation():
    # 1,000 img/s, 60,000 images: 60 s per epoch; 10,000 test images, 3 passes: 10 s + fixed.
    p = budget.plan(
        600, 20, 1000.0, train_images=60_000, val_images=0, test_images=10_000,
        test_passes=3, max_epochs=18,
    )  # fmt: skip
    assert p.epoch_seconds == pytest.approx(60.0)
    assert p.reserved_seconds == pytest.approx(10.0 + budget.FIXED_SECONDS)
    assert p.epochs == int((600 * (1 - budget.SAFETY) - 20 - p.reserved_seconds) // 60) == 8
    fast = budget.plan(
        600, 20, 5000.0, train_images=60_000, val_images=6_000, test_images=10_000,
        test_passes=2, max_epochs=18,
    )  # fmt: skip
    assert fast.epochs == 18  # never more than the recipe asks for
    slow = budget.plan(
        60, 50, 10.0, train_images=60_000, val_images=0, test_images=0, test_passes=2,
        max_epochs=18,
    )  # fmt: skip
    assert slow.epochs == 1  # at least one epoch, however slow


def test_auto_precision_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    assert hardware.resolve_precision("auto") == "mixed_bfloat16"
    assert hardware.slow_precision_warning("mixed_bfloat16") is None
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert hardware.resolve_precision("auto") == "float32"
    assert "emulated" in hardware.slow_precision_warning("mixed_bfloat16")
    assert hardware.resolve_precision("mixed_float16") == "mixed_float16"


def test_a_budgeted_run_records_the_epochs_it_chose(tmp_path, capsys):
    from resnetkit.cli import main

    run = tmp_path / "run"
    argv = ["train", "--model", "resnet_tiny", "--data", "digits", "--epochs", "500",
            "--batch-size", "64", "--precision", "float32", "--set", "data.val_fraction=0",
            "--set", "schedule.budget_minutes=0.25", "--set", "schedule.warmup_epochs=100",
            "--set", "run.report=false",
            "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "time budget 0.25 min" in out and "of 500 epochs" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())["schedule"]
    assert 1 <= saved["epochs"] < 500 and saved["budget_minutes"] is None
    assert saved["warmup_epochs"] == pytest.approx(100 * saved["epochs"] / 500)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == saved["epochs"]
    assert not (run / "report.html").exists() and not (run / "evaluation").exists()


@pytest.mark.parametrize("user_setting, expected", [(None, "True"), ("0", "False")])
def test_importing_resnetkit_first_turns_onednn_on_unless_the_user_chose(user_setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_setting
    code = (
        "import resnetkit, tensorflow\n"
        "from resnetkit.versions import onednn_enabled\n"
        "print(onednn_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
