"""Defaults from the data (training/rules.py): run length, batch, learning rate, augmentation,
and a plain run and fine-tune on 50 small images that follow them."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import save

from resnetkit.data.augment import Augment
from resnetkit.training import rules
from resnetkit.training.config import load_config
from resnetkit.training.state import RunState


@pytest.mark.parametrize(
    ("images", "steps"),
    [(50, 500), (19_999, 500), (20_000, 10_000), (499_999, 10_000), (500_000, 20_000)],
)
def test_the_step_rule_is_bit_hyperrule(images, steps):
    assert rules.rule_steps(images) == steps


def test_a_tiny_split_repeats_within_an_epoch_for_the_rule_steps():
    # 45 images at batch 11: 4 steps a pass, so an epoch is 13 passes (52 steps) and 500
    # steps take 10 epochs, from scratch (30 passes is only 120 steps) or fine-tuning.
    for fine_tuning in (False, True):
        length = rules.run_length(
            45, 11, epochs=None, steps=None, passes=None, fine_tuning=fine_tuning
        )
        assert (length.epochs, length.passes, length.steps_per_pass) == (10, 13, 4)
        assert length.steps == 520 >= rules.rule_steps(45)
        assert "BiT-HyperRule" in length.why


def test_a_medium_split_from_scratch_makes_thirty_passes():
    scratch = rules.run_length(5_000, 128, epochs=None, steps=None, passes=None, fine_tuning=False)
    assert (scratch.epochs, scratch.passes, scratch.steps) == (15, 2, 30 * 39)
    assert "30 passes" in scratch.why
    tuned = rules.run_length(5_000, 128, epochs=None, steps=None, passes=None, fine_tuning=True)
    assert (tuned.epochs, tuned.passes, tuned.steps) == (7, 2, 546)


def test_a_large_split_gets_whole_passes_as_epochs():
    length = rules.run_length(100_000, 128, epochs=None, steps=None, passes=None, fine_tuning=True)
    assert (length.epochs, length.passes, length.steps_per_pass) == (13, 1, 781)
    assert length.steps >= 10_000


def test_explicit_epochs_or_steps_override_the_rule():
    epochs = rules.run_length(45, 11, epochs=8, steps=None, passes=None, fine_tuning=True)
    assert (epochs.epochs, epochs.passes, epochs.steps) == (8, 1, 32)  # one pass an epoch
    passes = rules.run_length(45, 11, epochs=8, steps=None, passes=3, fine_tuning=True)
    assert passes.steps == 8 * 3 * 4
    steps = rules.run_length(45, 11, epochs=None, steps=100, passes=None, fine_tuning=False)
    assert steps.steps >= 100 and steps.why == "schedule.steps"
    # A run shorter than an epoch's minimum is not stretched to it: 20 steps, 5 passes.
    short = rules.run_length(45, 11, epochs=None, steps=20, passes=None, fine_tuning=False)
    assert (short.epochs, short.passes, short.steps) == (1, 5, 20)
    with pytest.raises(ValueError, match=r"schedule\.epochs or schedule\.steps"):
        rules.run_length(45, 11, epochs=8, steps=100, passes=None, fine_tuning=False)
    with pytest.raises(ValueError, match=r"schedule\.steps must be positive"):
        rules.run_length(45, 11, epochs=None, steps=0, passes=None, fine_tuning=False)


def test_the_batch_is_at_most_a_quarter_of_the_split():
    assert rules.default_batch(45) == 11
    assert rules.default_batch(100_000) == rules.DEFAULT_BATCH == 128
    assert rules.default_batch(3) == 1


def test_learning_rate_scaling_has_a_floor():
    assert rules.lr_factor(256) == 2.0
    assert rules.lr_factor(64) == 0.5
    assert rules.lr_factor(11) == rules.lr_factor(1) == 32 / 128


@pytest.mark.parametrize(
    ("input_side", "image_side", "crop", "pad", "min_area"),
    [
        (32, 28, "pad", 4, None),  # Fashion-MNIST at a CIFAR model's input
        (64, 500, "pad", 8, None),  # the input decides: crops of 64 px are small images
        (96, 96, "random_resized", None, 0.44),  # (64/96)² of the image
        (224, 500, "random_resized", None, 0.08),  # ImageNet's, clipped at 0.08
    ],
)
def test_augmentation_is_chosen_by_image_size(input_side, image_side, crop, pad, min_area):
    augment, line = Augment().resolved(input_side, image_side)
    assert augment.is_resolved and augment.crop == crop and augment.flip
    if pad is not None:
        assert augment.pad == pad and "pad-and-crop" in line
    if min_area is not None:
        assert augment.min_area == min_area and "random-resized" in line


def test_augmentation_the_config_sets_is_kept():
    augment, line = Augment(crop="random_resized", min_area=0.3).resolved(32, 28)
    assert (augment.crop, augment.min_area) == ("random_resized", 0.3)
    assert "augment.crop" in line


def test_of_equal_values_the_later_epoch_is_kept_and_patience_counts_from_the_first():
    state = RunState()
    assert state.improve("val_accuracy", 0.5, 1)
    assert state.improve("val_accuracy", 0.5, 2)  # a tie: the more trained weights
    assert not state.improve("val_accuracy", 0.4, 3)
    assert (state.best.epoch, state.best.first, state.best.since) == (2, 1, 1)
    assert state.improve("val_accuracy", 0.6, 4)
    assert (state.best.epoch, state.best.since) == (4, 4)


class _Steps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1


def _fifty_small_images(root):
    """5 classes × 10 training images of 28×28 px (and 2 test images each), as a user's."""
    colors = [(220, 20, 20), (20, 200, 20), (20, 20, 230), (220, 220, 20), (20, 220, 220)]
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("test", 2)):
        for c, color in enumerate(colors):
            for i in range(count):
                tint = tuple(int(v * rng.uniform(0.7, 1.0)) for v in color)
                save(root / split / f"class{c}" / f"{i}.png", size=(28, 28), color=tint)
    return root


def test_plain_run_and_fine_tune_on_fifty_small_images_follow_the_rules(tmp_path):
    """No batch, epochs or augmentation given: both runs make at least the rule's 500 steps
    at a quarter-split batch, with pad-and-crop, and record what they chose."""
    from resnetkit.training.engine import train
    from resnetkit.transfer.finetune import finetune_config, resolve_source

    data = _fifty_small_images(tmp_path / "images")
    scratch = load_config(None, ["model.name=resnet_tiny", f"data.source={data}"])
    runs = {}
    for name, config, start in (
        ("scratch", scratch, None),
        ("tuned", finetune_config(tmp_path / "scratch", overrides=[f"data.source={data}"]), 1),
    ):
        counter = _Steps()
        if start is not None:
            start = resolve_source(config.finetune.source, config.model.name)
        summary = train(config, tmp_path / name, callbacks=[counter], start=start)
        saved = load_config(tmp_path / name / "config.yaml")
        # A tenth held out for validation: 45 training images, a batch of 11.
        assert "at most 1/4 of the 45 training images" in summary["decisions"][0]
        assert saved.data.batch_size == 11 and saved.augment.crop == "pad"
        assert saved.schedule.passes_per_epoch == 13 and saved.schedule.steps is None
        assert counter.count == saved.schedule.epochs * 13 * 4 >= rules.rule_steps(45)
        assert any("BiT-HyperRule" in line for line in summary["decisions"])
        runs[name] = summary
    history = (tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()
    best = runs["tuned"]["best"]
    assert best is not None and len(history) == runs["tuned"]["epochs"]
    assert json.loads(history[best["epoch"] - 1])["val_accuracy"] == pytest.approx(best["value"])


@pytest.mark.parametrize(
    ("images", "strategy", "policy"),
    [(45, "two-stage", "frozen"), (400, "two-stage", "train"), (400, "linear", "frozen")],
)
def test_fine_tuning_batchnorm_follows_the_batch(images, strategy, policy):
    from types import SimpleNamespace

    config = load_config(None, ["finetune.source=somewhere", f"finetune.strategy={strategy}"])
    inputs = SimpleNamespace(source=SimpleNamespace(splits={"train": range(images)}))
    task = SimpleNamespace(augmentation=lambda inputs: (Augment(crop="none"), "augmentation"))
    decided, lines = rules.decide(config, task, inputs)
    assert decided.finetune.bn_policy == policy
    said = [line for line in lines if line.startswith("fine-tuning BatchNorm")]
    if strategy == "linear":
        assert said == []  # a linear probe trains no BatchNorm layer: nothing to decide
    else:
        assert len(said) == 1 and said[0].startswith(f"fine-tuning BatchNorm: {policy}")
