"""The typed training config: YAML, --set overrides, strict keys and types, round trip."""

import typing
from pathlib import Path

import pytest

from resnetkit.training.config import Config, apply_overrides, load_config, save_config


def test_defaults_file_and_overrides_in_that_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: resnet56\noptim:\n  lr: 0.2\n  clipnorm: 1\n")
    config = load_config(
        path, ["optim.lr=0.05", "augment.crop=pad", "schedule.milestones=[0.3, 0.6]"]
    )
    assert config.model.name == "resnet56" and config.optim.lr == 0.05
    assert config.optim.clipnorm == 1.0 and isinstance(config.optim.clipnorm, float)
    assert config.augment.crop == "pad" and config.schedule.milestones == [0.3, 0.6]
    assert config.data.batch_size == Config().data.batch_size


def test_saved_config_reloads_to_the_same_config(tmp_path):
    config = load_config(
        overrides=["model.input_size=[28, 28, 1]", "model.weights=null", "run.seed=3"]
    )
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lrr=0.1"], r"unknown config key 'optim\.lrr'.*'optim\.lr'"),
        (["optimizer.lr=0.1"], r"unknown config key 'optimizer'.*'optim'"),
        (["optim.lr=fast"], r"optim\.lr: expected float, got 'fast'"),
        (["data.batch_size=1.5"], r"data\.batch_size: expected int, got 1\.5"),
        (["run.deterministic=1"], r"run\.deterministic: expected bool, got 1"),
        (["model.input_size=[28, x]"], r"model\.input_size\[1\]: expected int, got 'x'"),
        (["augment.crop=zoom"], r"augment\.crop: expected one of auto, random_resized, pad, none"),
        (["augment.mixup=0.2", "augment.cutmix=1.0"], r"augment: choose MixUp or CutMix"),
        (["optim.lr"], r"expected key=value"),
        (["optim.lr.x=1"], r"'lr' is not a section"),
    ],
)
def test_bad_keys_and_values_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides=overrides)


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("run.precision", "auto", "fp16"),
        ("run.strategy", "mirrored", "horovod"),
        ("data.on_bad_image", "error", "ignore"),
        ("data.class_weight", "auto", "balanced"),
        ("optim.name", "adamw", "adam"),
        ("schedule.name", "onecycle", "linear"),
        ("finetune.strategy", "gradual", "partial"),
        ("finetune.bn_policy", "train", "freeze"),
        ("augment.crop", "pad", "center"),
    ],
)
def test_closed_sets_accept_their_values_and_name_the_others(key, good, bad):
    """A Literal-typed key takes each of its values; any other names key, value, choices."""
    section, name = key.split(".")
    hint = typing.get_type_hints(type(getattr(Config(), section)))[name]
    allowed = [a for a in typing.get_args(hint) if a is not type(None)]
    allowed = typing.get_args(allowed[0]) if typing.get_origin(allowed[0]) else allowed
    assert good in allowed
    config = load_config(overrides=[f"{key}={good}"])
    assert getattr(getattr(config, section), name) == good
    with pytest.raises(ValueError) as error:
        load_config(overrides=[f"{key}={bad}"])
    message = str(error.value)
    assert message.startswith(f"{key}: expected one of ") and repr(bad) in message
    assert all(str(a) in message for a in allowed)


def test_a_literal_is_not_matched_by_a_value_of_another_type():
    with pytest.raises(ValueError, match=r"data\.on_bad_image: expected one of skip, error"):
        load_config(overrides=["data.on_bad_image=1"])


def test_bad_files_are_named(tmp_path):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"list\.yaml: a config file must be a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "section.yaml").write_text("model: resnet20\n")
    with pytest.raises(ValueError, match="model: expected a mapping"):
        load_config(tmp_path / "section.yaml")


def test_overrides_do_not_change_their_input():
    data = {"optim": {"lr": 0.1}}
    apply_overrides(data, ["optim.lr=0.2"])
    assert data == {"optim": {"lr": 0.1}}


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_recipe_loads_and_opens_with_its_command(path):
    """Each recipe in configs/ is a valid config headed by the command that runs it."""
    load_config(path)
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any(line.lstrip("# ").startswith("resnetkit train --config configs/") for line in header)


def test_a_detector_starts_from_its_tasks_defaults_under_every_flag_and_file(tmp_path):
    from resnetkit.transfer import finetune_config

    detector = "model.name=retinanet_resnet8_fast_fpn"
    c = load_config(None, [detector])
    assert (c.optim.lr, c.optim.weight_decay, c.optim.clipnorm) == (0.04, 1e-4, 35.0)
    assert c.schedule.warmup_epochs == 1
    assert load_config(None, [detector, "optim.lr=0.5"]).optim.lr == 0.5
    file = tmp_path / "c.yaml"
    file.write_text("optim:\n  clipnorm: 10\n")
    assert load_config(file, [detector]).optim.clipnorm == 10
    # Fine-tuning's own defaults lie over the task's; classifiers keep the plain defaults.
    ft = finetune_config("runs/source", overrides=[detector])
    assert (ft.optim.lr, ft.optim.clipnorm, ft.schedule.warmup_epochs) == (0.01, 35.0, 0)
    plain = load_config(None, ["model.name=resnet20"])
    assert (plain.optim.lr, plain.optim.clipnorm) == (Config().optim.lr, None)
