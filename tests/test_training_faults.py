"""``resnetkit train`` in real processes: killed, terminated, diverging, multi-worker.

The reference is one uninterrupted ``--deterministic`` run; every interrupted run must end
with the same weights (within 1e-6), and no checkpoint on disk may ever be incomplete.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

CONFIG = """
model: {name: resnet_tiny, drop_path_rate: 0.1}
data: {source: digits, batch_size: 32, val_fraction: 0.2}
augment: {crop: pad, pad: 1, flip: false, erasing: 0.25}
optim: {lr: 0.4, ema_decay: 0.9, label_smoothing: 0.1}
schedule: {name: onecycle, epochs: 16}
run: {deterministic: true, keep_checkpoints: 2, tta: true, report: false}
"""


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "resnetkit.cli", "train", *args]


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*args), capture_output=True, text=True, env=_env(), timeout=timeout
    )


def _weights(path: Path) -> dict[str, np.ndarray]:
    """Every array in a Keras weights file (.weights.h5 or inside a .keras zip)."""
    import zipfile

    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as f:
            return _weights_h5(h5py.File(f, "r"))
    with h5py.File(path, "r") as f:
        return _weights_h5(f)


def _weights_h5(f) -> dict[str, np.ndarray]:
    out = {}

    def collect(name, obj):  # returns None: visititems stops at the first non-None result
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    f.visititems(collect)
    assert len(out) > 10
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, rtol=0, err_msg=k)


def _assert_checkpoints_complete(run: Path) -> None:
    """Every visible checkpoint opens and holds a readable state (temporaries aside)."""
    folder = run / "checkpoints"
    for ckpt in folder.iterdir() if folder.is_dir() else []:
        if ckpt.name.startswith(".tmp-"):
            continue
        state = json.loads((ckpt / "state.json").read_text())
        assert state["epochs_done"] >= 0
        assert _weights(ckpt / "model.weights.h5")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    (root / "config.yaml").write_text(CONFIG)
    result = _run("--config", str(root / "config.yaml"), "--run-dir", str(root / "ref"))
    assert result.returncode == 0, result.stderr
    return root


def test_uninterrupted_run_writes_a_complete_run_directory(reference):
    run = reference / "ref"
    for name in ("config.yaml", "class_map.json", "metrics.csv", "metrics.jsonl", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "model.keras").is_file() and any((run / "tensorboard").iterdir())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == list(range(1, 17))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 16 and summary["test_accuracy"] > 0.5
    assert summary["test_accuracy_no_tta"] > 0.5  # run.tta: both figures are reported
    assert summary["images_per_second"] > 0 and summary["train_seconds"] > 0
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len([n for n in names if n.startswith("epoch-")]) == 2  # keep_checkpoints
    assert len([n for n in names if n.startswith("best-")]) == 1


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def test_sigkill_at_random_moments_then_resume_gives_the_same_weights(reference):
    rng = random.Random(1234)
    run = reference / "killed"
    folder = run / "checkpoints"
    kills = []

    def saved() -> list[str]:
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    plans = ["during-write", "random"]
    for i, plan in enumerate(plans):
        args = ("--resume", str(run)) if i else ("--config", str(reference / "config.yaml"))
        args = (*args,) if i else (*args, "--run-dir", str(run))
        proc = subprocess.Popen(_command(*args), env=_env(), stderr=subprocess.DEVNULL)
        before = saved()
        if plan == "during-write":  # the moment a checkpoint is half written
            hit = _wait_for(lambda: any(n.startswith(".tmp-") for n in saved()), proc)
        else:  # a random moment after the first new checkpoint
            hit = _wait_for(lambda before=before: saved() != before, proc)
            time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append((plan, hit, saved()))
        _assert_checkpoints_complete(run)
    assert any(plan == "during-write" and hit for plan, hit, _ in kills), kills
    result = _run("--resume", str(run))
    assert result.returncode == 0, result.stderr
    assert not any(p.name.startswith(".tmp-") for p in folder.iterdir())
    _assert_same(_weights(reference / "ref" / "model.keras"), _weights(run / "model.keras"))
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 17  # header + 16 epochs, none repeated by the resumes


def test_sigterm_saves_mid_epoch_and_resume_matches(reference):
    run = reference / "terminated"
    proc = subprocess.Popen(
        _command("--config", str(reference / "config.yaml"), "--run-dir", str(run)),
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _wait_for(lambda: (run / "checkpoints" / "epoch-0003").is_dir(), proc)
    time.sleep(0.15)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"resnetkit train --resume {run}" in err
    _assert_checkpoints_complete(run)
    result = _run("--resume", str(run))
    assert result.returncode == 0, result.stderr
    _assert_same(_weights(reference / "ref" / "model.keras"), _weights(run / "model.keras"))


def test_nan_loss_stops_with_the_step_and_keeps_checkpoints(reference):
    run = reference / "nan"
    # The rate jumps by 1e12 at 60% of the run: epochs 1-2 are fine, then the loss explodes.
    result = _run(
        "--config",
        str(reference / "config.yaml"),
        "--run-dir",
        str(run),
        "--epochs",
        "4",
        "--set",
        "schedule.name=step",
        "--set",
        "schedule.milestones=[0.6]",
        "--set",
        "schedule.gamma=1e12",
        "--set",
        "optim.ema_decay=null",
    )
    assert result.returncode == 1, result.stderr
    assert "loss became nan" in result.stderr or "loss became inf" in result.stderr
    assert "at step" in result.stderr and "lower optim.lr" in result.stderr
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "epoch-0002" in kept and "epoch-0003" not in kept
    _assert_checkpoints_complete(run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # three processes; every default test runs one
def test_two_workers_on_localhost_match_a_single_process(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "model: {name: resnet_tiny}\n"
        "data: {source: digits, batch_size: 64, val_fraction: 0.2}\n"
        "augment: {crop: none, flip: false}\n"
        "optim: {lr: 0.4}\n"
        "schedule: {name: cosine, epochs: 3}\n"
    )
    single = _run("--config", str(config), "--run-dir", str(tmp_path / "single"))
    assert single.returncode == 0, single.stderr
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    procs = []
    for index in range(2):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        run = tmp_path / f"multi{index}"
        cmd = _command("--config", str(config), "--run-dir", str(run), "--strategy", "multiworker")
        procs.append(
            subprocess.Popen(
                cmd,
                env={**_env(), "TF_CONFIG": json.dumps(task)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not (tmp_path / "multi1").exists()  # only the chief writes a run directory
    multi = json.loads((tmp_path / "multi0" / "summary.json").read_text())
    alone = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert multi["epochs"] == alone["epochs"] == 3
    # Same global batch (two workers × 32); BatchNorm normalizes over 32 images per worker
    # instead of 64, so the runs are close, not identical.
    assert multi["final"]["loss"] == pytest.approx(alone["final"]["loss"], rel=0.1)
    assert multi["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=0.08)
