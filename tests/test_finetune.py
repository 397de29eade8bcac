"""Fine-tuning: phases, frozen BatchNorm, layer-wise rates, and real runs from generated files
in the original formats (Keras Applications .h5, torchvision .safetensors, a resnetkit run)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import fill_weights, save, write_keras_h5

from resnetkit.data import load_class_map
from resnetkit.models import create_model
from resnetkit.training.config import FinetuneConfig, load_config
from resnetkit.training.phases import Phase, lr_scale, plan_phases
from resnetkit.transfer.finetune import PRESET, finetune

NAMES = ["stem", "stage1", "stage2", "stage3", "head"]


def _config(source, data, *extra):
    return load_config(
        None,
        [f"finetune.source={source}", f"data.source={data}", "data.batch_size=32", *extra],
        preset=PRESET,
    )


def _weights(model) -> dict[str, np.ndarray]:
    return {w.path: np.asarray(w.numpy()) for w in model.weights}


def test_phases_follow_the_strategy():
    assert plan_phases(FinetuneConfig(strategy="linear"), 6, NAMES) == [Phase(0, 6, ("head",))]
    assert plan_phases(FinetuneConfig(strategy="two-stage", head_epochs=2), 6, NAMES) == [
        Phase(0, 2, ("head",)),
        Phase(2, 4, tuple(NAMES)),
    ]
    gradual = plan_phases(FinetuneConfig(strategy="gradual", head_epochs=1), 8, NAMES)
    assert [p.trainable for p in gradual] == [
        ("head",),
        ("head", "stage3"),
        ("head", "stage3", "stage2"),
        ("head", "stage3", "stage2", "stage1"),
        ("head", "stage3", "stage2", "stage1", "stem"),
    ]
    assert [p.epochs for p in gradual] == [1, 2, 2, 2, 1] and gradual[-1].end == 8
    picked = FinetuneConfig(strategy="full", trainable_stages=["stage3"])
    assert plan_phases(picked, 3, NAMES) == [Phase(0, 3, ("stage3", "head"))]


@pytest.mark.parametrize(
    ("options", "epochs", "match"),
    [
        ({"strategy": "best"}, 5, "finetune.strategy"),
        ({"bn_policy": "maybe"}, 5, "finetune.bn_policy"),
        ({"trainable_stages": ["stage9"]}, 5, "stage9"),
        ({"strategy": "two-stage", "head_epochs": 5}, 5, "head_epochs"),
        ({"strategy": "gradual", "head_epochs": 1}, 3, "at least 5"),
    ],
)
def test_bad_fine_tuning_options_name_the_key(options, epochs, match):
    with pytest.raises(ValueError, match=match):
        plan_phases(FinetuneConfig(**options), epochs, NAMES)


def test_learning_rates_per_stage_follow_the_decay():
    from resnetkit.training.config import OptimConfig, ScheduleConfig
    from resnetkit.training.optim import make_optimizer
    from resnetkit.training.phases import layer_stages

    model = create_model("resnet20", input_shape=(8, 8, 1))
    scale = lr_scale(model, lr_decay=0.5, head_lr_mult=10.0)
    stages = layer_stages(model)
    expected = {"stem": 0.125, "stage1": 0.25, "stage2": 0.5, "stage3": 1.0, "head": 10.0}
    for path, factor in scale.items():
        assert factor == expected[stages[path.split("/")[0]]], path
    assert set(scale) == {w.path for w in model.weights}

    # One plain SGD step: every variable moves by exactly rate × its factor × gradient.
    optimizer = make_optimizer(
        OptimConfig(lr=0.1, momentum=0.0, weight_decay=0.0),
        ScheduleConfig(name="step", epochs=1),
        batch_size=128,
        steps_per_epoch=1,
        variables=model.trainable_variables,
        lr_scale=scale,
    )
    before = _weights(model)
    variables = model.trainable_variables
    optimizer.apply([np.ones(v.shape, np.float32) for v in variables], variables)
    for v in model.trainable_variables:
        moved = before[v.path] - np.asarray(v.numpy())
        np.testing.assert_allclose(moved, 0.1 * scale[v.path], rtol=1e-5, err_msg=v.path)


def test_linear_probe_of_an_rgb_network_on_grey_images(tmp_path, capsys):
    """Only the head changes; frozen BatchNorm statistics stay exactly as loaded."""
    source = create_model("resnet20", input_shape=(16, 16, 3), num_classes=7)
    fill_weights(source, seed=3)
    path = tmp_path / "rgb.h5"
    write_keras_h5(source, path)
    config = _config(
        path,
        "digits",
        "model.name=resnet20",
        "model.input_size=[16, 16, 1]",
        "finetune.strategy=linear",
        "schedule.epochs=1",
    )
    summary = finetune(config, tmp_path / "run", stream=None)
    assert summary["epochs"] == 1 and "test_accuracy" in summary
    assert "first convolution adapted from 3 to 1 input channels" in capsys.readouterr().out

    tuned = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert tuned.input_shape[-1] == 1  # grey in, through the adapted first convolution
    loaded, after = _weights(source), _weights(tuned)
    for key, value in after.items():
        if key.startswith("head_fc/"):
            continue
        if key == "stem_conv/kernel":
            value_expected = loaded[key].sum(axis=2, keepdims=True)
        else:
            value_expected = loaded[key]
        np.testing.assert_array_equal(value, value_expected, err_msg=key)
    assert any(k.endswith("moving_mean") for k in after)  # the statistics were compared


def _image_folder(root, classes=("red", "green", "blue"), per_class=6, size=(40, 30)):
    colors = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 230)}
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", 2)):
        for name in classes:
            for i in range(count):
                tint = tuple(int(c * rng.uniform(0.7, 1.0)) for c in colors[name])
                save(root / split / name / f"{i}.png", size=size, color=tint)
    return root


def _check_run(run_dir, classes: int):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and "test_accuracy" in summary
    assert len(load_class_map(run_dir / "class_map.json")) == classes
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    assert model.output_shape[-1] == classes
    return summary


def _two_stage_on_a_folder(tmp_path, weights, arch, classes, *extra):
    """load → adapt → two-stage fine-tune → test evaluation → model.keras, on PNG folders."""
    data = _image_folder(tmp_path / "images", classes=classes)
    items = ["schedule.epochs=2", "finetune.head_epochs=1", "data.val_fraction=0", *extra]
    config = _config(weights, data, f"model.name={arch}", "model.input_size=[64, 64, 3]", *items)
    finetune(config, tmp_path / "run", stream=None)
    _check_run(tmp_path / "run", len(classes))


@pytest.mark.slow  # two-stage is run by default from safetensors; this is the .h5 reader's run
def test_two_stage_from_a_generated_keras_applications_h5(tmp_path):
    reference = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    fill_weights(reference, seed=1)
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras_h5(reference, path)
    _two_stage_on_a_folder(tmp_path, path, "resnet50_keras", ("red", "green", "blue"))
    # config.yaml is the resolved config: it reloads, with the weights file and architecture
    # the run started from. The weights' preprocessing (Keras ResNet v1: "caffe", BGR minus
    # the mean) is no key of it: it travels with the model.
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert saved.finetune.source == str(path) and saved.model.name == "resnet50_keras"
    assert saved.finetune.strategy == "two-stage" and saved.finetune.head_epochs == 1
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert model.preprocessing.mode == "caffe"


def test_two_stage_from_a_generated_torchvision_safetensors(tmp_path):
    from safetensors.numpy import save_file

    from resnetkit.weights import torch_state_dict

    reference = create_model("resnet18", input_shape=(64, 64, 3))
    fill_weights(reference, seed=2)
    path = tmp_path / "resnet18.safetensors"
    save_file(torch_state_dict(reference), path)
    _two_stage_on_a_folder(tmp_path, path, "resnet18", ("red", "blue"), "data.class_weight=auto")


def test_early_stopping_without_validation_data_fails_before_writing(tmp_path):
    source = create_model("resnet_tiny", input_shape=(8, 8, 1))
    path = tmp_path / "tiny.h5"
    write_keras_h5(source, path)
    config = _config(path, "digits", "model.name=resnet_tiny", "data.val_fraction=0")
    config.finetune.patience = 2
    with pytest.raises(ValueError, match=r"finetune\.patience"):
        finetune(config, tmp_path / "run", stream=None)
    assert not (tmp_path / "run").exists()


def test_from_a_run_with_five_images_per_class_stops_early_with_the_best_weights(tmp_path):
    """A resnetkit run as the source; a small folder; early stopping restores the best."""
    data = _image_folder(tmp_path / "images", per_class=5)
    pre = load_config(
        None,
        [
            "model.name=resnet_tiny",
            f"data.source={data}",
            "model.input_size=[16, 16, 3]",
            "schedule.epochs=1",
            "data.batch_size=4",
            "data.val_fraction=0",
        ],
    )
    from resnetkit.training.engine import train

    train(pre, tmp_path / "pre", stream=None)
    config = _config(
        tmp_path / "pre",
        data,
        "data.batch_size=4",
        "data.val_fraction=0.4",
        "schedule.epochs=30",
        "finetune.strategy=full",
        "finetune.patience=2",
        "finetune.bn_policy=train",
    )
    run = tmp_path / "run"
    finetune(config, run, stream=None)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] < 30  # stopped early
    best = summary["best"]
    tuned = keras.saving.load_model(run / "model.keras", safe_mode=True)
    best_dir = next((run / "checkpoints").glob("best-*"))
    reference = type(tuned).from_config(tuned.get_config())
    reference.load_weights(best_dir / "model.weights.h5")
    for a, b in zip(tuned.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()))
    # Patience counts from the epoch that first reached the best value; the weights kept
    # are those of the last epoch that reached it.
    first = best["first"] if best["first"] is not None else best["epoch"]
    assert first == summary["epochs"] - 2 and best["epoch"] >= first


def test_cli_finetune_needs_a_source_and_names_it(tmp_path, capsys):
    from resnetkit.cli import main

    assert main(["finetune", "--data", "digits"]) == 2
    assert "--from" in capsys.readouterr().err
    code = main(["finetune", "--from", str(tmp_path / "nope"), "--data", "digits"])
    assert code != 0
    assert "nope" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_linear_leaves_only_the_head_trainable():
    from resnetkit.training.phases import set_trainable

    model = create_model("resnet20", input_shape=(8, 8, 1))
    set_trainable(model, ("head",), "frozen")
    assert {v.path.split("/")[0] for v in model.trainable_variables} == {"head_fc"}
    set_trainable(model, ("stage3", "head"), "train")
    trainable = {v.path.split("/")[0] for v in model.trainable_variables}
    assert "stage3_block1_bn1" in trainable and "stage2_block3_conv2" not in trainable


def test_a_resume_at_the_phase_boundary_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    """Killed right after the head-only phase's checkpoint, resumed into the second phase."""
    from resnetkit.training.callbacks import RunRecorder

    source = create_model("resnet_tiny", input_shape=(8, 8, 1))
    fill_weights(source, seed=5)
    path = tmp_path / "tiny.h5"
    write_keras_h5(source, path)
    items = [
        "model.name=resnet_tiny",
        "model.input_size=[8, 8, 1]",
        "schedule.epochs=3",
        "finetune.head_epochs=1",
        "finetune.bn_policy=train",
        "data.batch_size=128",
    ]
    finetune(_config(path, "digits", *items), tmp_path / "whole", stream=None)

    original = RunRecorder._save

    def killed_after_epoch_one(self, epochs_done, step, best=False):
        original(self, epochs_done, step, best)
        if (epochs_done, step) == (1, 0):
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(RunRecorder, "_save", killed_after_epoch_one)
    with pytest.raises(KeyboardInterrupt):
        finetune(_config(path, "digits", *items), tmp_path / "cut", stream=None)
    monkeypatch.setattr(RunRecorder, "_save", original)
    finetune(None, tmp_path / "cut", resume=True, stream=None)

    whole = keras.saving.load_model(tmp_path / "whole" / "model.keras", safe_mode=True)
    cut = keras.saving.load_model(tmp_path / "cut" / "model.keras", safe_mode=True)
    for a, b in zip(whole.weights, cut.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, err_msg=a.path)
