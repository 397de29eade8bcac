"""In-process checks of the training parts: schedules, optimizers, checkpoints, run dirs."""

from __future__ import annotations

import errno

import keras
import numpy as np
import pytest

from resnetkit.training.checkpoint import CheckpointError, Checkpoints
from resnetkit.training.config import OptimConfig, ScheduleConfig, load_config
from resnetkit.training.optim import OneCycle, make_optimizer, make_schedule
from resnetkit.training.state import RunState


def _lr(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_schedules_have_their_shapes():
    cosine = make_schedule(ScheduleConfig(name="cosine", epochs=10, warmup_epochs=1), 1.0, 10)
    assert _lr(cosine, 0) == pytest.approx(0.01) and _lr(cosine, 10) == pytest.approx(1.0)
    assert _lr(cosine, 100) == pytest.approx(0.0, abs=1e-6)
    step = make_schedule(ScheduleConfig(name="step", epochs=10, milestones=[0.5]), 1.0, 10)
    assert _lr(step, 49) == pytest.approx(1.0) and _lr(step, 51) == pytest.approx(0.1)
    cycle = make_schedule(ScheduleConfig(name="onecycle", epochs=10, warmup_epochs=3), 1.0, 10)
    values = [_lr(cycle, s) for s in range(101)]
    assert values[0] == pytest.approx(1 / 25) and max(values) == pytest.approx(1.0)
    assert int(np.argmax(values)) == 30 and values[-1] < 1e-3
    restored = OneCycle.from_config(cycle.get_config())
    assert _lr(restored, 55) == pytest.approx(values[55])
    poly = make_schedule(ScheduleConfig(name="poly", epochs=10, power=0.9), 2.0, 10)
    assert _lr(poly, 0) == pytest.approx(2.0) and _lr(poly, 100) == pytest.approx(0.0)
    assert _lr(poly, 50) == pytest.approx(2.0 * 0.5**0.9)  # DeepLab's (1 - t/T)^0.9


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"name": "step", "warmup_epochs": 1}, "warmup_epochs"),
        ({"name": "step", "milestones": [0.8, 0.5]}, "milestones"),
        ({"name": "poly", "warmup_epochs": 1}, "warmup_epochs"),
        ({"name": "linear"}, "schedule.name"),
        ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs"),
    ],
)
def test_bad_schedules_name_the_key(options, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(ScheduleConfig(**{"epochs": 4, **options}), 0.1, 10)


@pytest.mark.parametrize("name", ["sgd", "adamw", "lamb"])
def test_weight_decay_skips_batchnorm_and_biases(name):
    from resnetkit.models import create_model

    model = create_model("resnet_tiny", input_shape=(8, 8, 1))
    opt = make_optimizer(
        OptimConfig(name=name, lr=0.1, weight_decay=1e-4),
        ScheduleConfig(epochs=2),
        batch_size=64,
        steps_per_epoch=5,
        variables=model.trainable_variables,
    )
    decayed = {v.path for v in model.trainable_variables if opt._use_weight_decay(v)}
    assert decayed and all("kernel" in p for p in decayed)
    assert not any("gamma" in p or "beta" in p or "bias" in p for p in decayed)
    assert _lr(opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate, 0) > 0


def test_lr_scales_with_batch_and_unknown_optimizer_is_named():
    from resnetkit.training.optim import peak_lr

    assert peak_lr(OptimConfig(lr=0.1), 256) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"optim\.name"):
        make_optimizer(
            OptimConfig(name="rmsprop"),
            ScheduleConfig(epochs=1),
            batch_size=8,
            steps_per_epoch=1,
            variables=[],
        )


def test_yaml_style_floats_are_read():
    assert load_config(None, ["schedule.gamma=1e12"]).schedule.gamma == 1e12
    with pytest.raises(ValueError, match=r"schedule\.gamma"):
        load_config(None, ["schedule.gamma=big"])


def _tiny_model():
    from resnetkit.models import create_model

    model = create_model("resnet_tiny", input_shape=(8, 8, 1))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    model = _tiny_model()
    ckpts = Checkpoints(tmp_path / "checkpoints", keep=2)
    first = ckpts.save(model, RunState(epochs_done=1))

    def disk_full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_weights", disk_full)
    with pytest.raises(CheckpointError, match="No space left") as err:
        ckpts.save(model, RunState(epochs_done=2))
    assert "epoch-0001 is intact" in str(err.value)
    assert ckpts.latest() == first
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["epoch-0001"]


def test_checkpoints_keep_the_newest_and_order_mid_epoch_ones(tmp_path):
    model = _tiny_model()
    ckpts = Checkpoints(tmp_path, keep=2)
    for epoch, step in [(1, 0), (2, 0), (2, 7), (3, 0)]:
        ckpts.save(model, RunState(epochs_done=epoch, step=step))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002-step-000007", "epoch-0003"]
    (tmp_path / ".tmp-epoch-0004-deadbeef").mkdir()
    ckpts.clean()
    assert ckpts.latest().name == "epoch-0003"
    with pytest.raises(ValueError, match="keep_checkpoints"):
        Checkpoints(tmp_path, keep=0)


def test_run_directory_problems_are_clear_before_training(tmp_path):
    from resnetkit.training.engine import _prepare_run_dir

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "config.yaml").write_text("x")
    with pytest.raises(FileExistsError, match="--resume"):
        _prepare_run_dir(taken, resume=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        _prepare_run_dir(blocker / "run", resume=False)


def test_cli_train_rejects_options_with_resume_and_bad_keys(tmp_path, capsys):
    from resnetkit.cli import main

    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    assert "--resume takes the run's own saved config" in capsys.readouterr().err
    assert main(["train", "--set", "optim.lrr=0.1", "--run-dir", str(tmp_path / "r")]) == 2
    assert "optim.lrr" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a resnetkit run directory" in capsys.readouterr().err


def test_predict_dataset_with_and_without_flip_tta():
    import tensorflow as tf

    from resnetkit.models import create_model
    from resnetkit.tasks.classify.predict import predict_dataset, tta_metrics

    model = create_model("resnet_tiny", input_shape=(8, 8, 1), classifier_activation="softmax")
    x = np.random.default_rng(0).normal(size=(10, 8, 8, 1)).astype(np.float32)
    y = np.arange(10) % 10
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    probs, labels = predict_dataset(model, ds)
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_array_equal(labels, y)
    flipped, _ = predict_dataset(model, ds, tta=True)
    mirror = model.predict(x[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(flipped, (probs + mirror) / 2, atol=1e-5)
    metrics = tta_metrics(np.eye(10)[y] * 0.9 + 0.01, y)
    assert metrics["accuracy"] == 1.0 and metrics["top5_accuracy"] == 1.0
    assert metrics["nll"] == pytest.approx(-np.log(0.91), rel=1e-5)


def test_train_on_a_broken_folder_skips_and_lists_bad_files(broken, tmp_path, capsys):
    import csv
    import shutil

    from helpers import LIMIT

    from resnetkit.cli import main

    root, _ = broken
    shutil.rmtree(root / "empty_class")
    common = [
        "train", "--model", "resnet_tiny", "--data", str(root), "--epochs", "1",
        "--batch-size", "4", "--set", "model.input_size=[16, 16, 3]",
        "--set", f"data.max_pixels={LIMIT}", "--set", "data.val_fraction=0",
    ]  # fmt: skip
    assert main([*common, "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "bad images: 5 skipped" in out  # found by the header check, before training
    assert "bad images: 1 more found while decoding" in out  # the truncated JPEG
    with open(tmp_path / "run" / "bad_images.csv", encoding="utf8", errors="surrogateescape") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "reason"] and len(rows) == 7
    assert (tmp_path / "run" / "model.keras").is_file()

    strict = tmp_path / "strict"
    assert main([*common, "--on-bad-image", "error", "--run-dir", str(strict)]) == 2
    err = capsys.readouterr().err
    assert "6 bad image file(s)" in err and "truncated.png" in err and "zero.jpg" in err
    assert not strict.exists()  # nothing was started, nothing is left behind
