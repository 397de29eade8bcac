"""resnetkit analyze: gradient norms per layer and the degradation experiment."""

import json
import shlex

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from resnetkit.analyze import gradient_norms, kernel_variables
from resnetkit.analyze.degradation import check_expectations, degradation_config
from resnetkit.cli import build_parser, main
from resnetkit.data import load_data
from resnetkit.models import create_model
from resnetkit.training.config import load_config


def _tiny(name: str = "resnet20") -> keras.Model:
    keras.utils.set_random_seed(0)
    return create_model(name, num_classes=10, input_shape=(8, 8, 1))


def _batch(n: int = 8):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 8, 8, 1)).astype("float32"), rng.integers(0, 10, n)


def test_kernel_variables_are_every_conv_and_dense_kernel_in_network_order():
    for name in ("plain20", "resnet20"):
        paths = [v.path for v in kernel_variables(_tiny(name))]
        assert len(paths) == 20  # 19 convolutions and the classifier: "20 layers"
        assert paths[0] == "stem_conv/kernel" and paths[-1] == "head_fc/kernel"
        assert paths[1:3] == ["stage1_block1_conv1/kernel", "stage1_block1_conv2/kernel"]
        assert paths[-2] == "stage3_block3_conv2/kernel"


def test_gradient_norms_match_a_direct_tape_and_finite_differences():
    model = _tiny()
    x, y = _batch()
    kernels = kernel_variables(model)
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    norms, loss = gradient_norms(model, x, y)
    # Measuring put BatchNorm's moving statistics back.
    for v, old in zip(model.non_trainable_variables, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), old)

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        direct_loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(direct_loss, model.trainable_variables)
    by_path = {v.path: g for v, g in zip(model.trainable_variables, grads, strict=True)}
    expected = [float(np.linalg.norm(by_path[k.path].numpy())) for k in kernels]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)
    assert loss == pytest.approx(float(direct_loss), rel=1e-6)
    assert len(set(np.round(norms, 6))) == len(norms)  # per layer, not one number repeated

    # Independent of any tape: the loss's slope along the gradient's direction is its norm.
    i = 7
    kernel, g = kernels[i], by_path[kernels[i].path].numpy()
    w0, u, eps = kernel.numpy().copy(), g / np.linalg.norm(g), 1e-3

    def loss_at(w):
        kernel.assign(w)
        return float(loss_fn(y, model(x, training=True)))

    slope = (loss_at(w0 + eps * u) - loss_at(w0 - eps * u)) / (2 * eps)
    kernel.assign(w0)
    assert slope == pytest.approx(norms[i], rel=0.02)


def test_analyze_gradients_cli_writes_json_and_chart(tmp_path, capsys):
    out = tmp_path / "g"
    code = main(
        [
            "analyze", "gradients", "--models", "plain20,resnet20", "--data", "digits",
            "--steps", "3", "--batch-size", "16", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads((out / "gradients.json").read_text())
    assert list(result["models"]) == ["plain20", "resnet20"]
    assert result["steps"] == 3 and result["batch_size"] == 16
    for row in result["models"].values():
        n = len(row["layers"])
        assert n == 20 and row["layers"][0] == "stem_conv/kernel"
        for key in ("init", "trained"):
            norms = row[key]["grad_norm"]
            assert len(norms) == n and all(np.isfinite(norms)) and min(norms) > 0
            assert len(row[key]["weight_norm"]) == n
        # Three SGD steps changed the weights, hence the gradients.
        assert row["init"]["grad_norm"] != row["trained"]["grad_norm"]
    with Image.open(out / "gradients.png") as png:
        assert png.format == "PNG" and png.width > 300
    printed = capsys.readouterr().out
    assert "plain20" in printed and "3 steps" in printed and "gradients.json" in printed


def test_analyze_rejects_unknown_models_with_suggestions(tmp_path, capsys):
    code = main(["analyze", "gradients", "--models", "plain57", "--out", str(tmp_path)])
    assert code == 2
    assert "plain56" in capsys.readouterr().err


def test_train_subset_is_stratified_and_seeded():
    from resnetkit.tasks.classify.inputs import resolve_inputs

    config = degradation_config("plain20", data="digits", train_subset=200, seed=3)
    first = resolve_inputs(config).source.splits["train"]
    again = resolve_inputs(config).source.splits["train"]
    assert len(first) == 200
    assert set(np.bincount(first.labels, minlength=10)) <= {19, 20, 21}
    np.testing.assert_array_equal(first.arrays, again.arrays)
    with pytest.raises(ValueError, match="train_subset must be positive; got 0"):
        resolve_inputs(degradation_config("plain20", data="digits", train_subset=0))


def test_degradation_config_is_one_recipe_for_every_model():
    a, b = degradation_config("plain56"), degradation_config("resnet20")
    assert a.model.name == "plain56" and b.model.name == "resnet20"
    a.model.name = b.model.name
    assert a == b
    assert a.model.zero_init_residual is False  # He et al.'s initialization for every model
    assert a.data.val_fraction == 0 and a.run.precision == "float32"
    zero = degradation_config("resnet56", zero_init_residual=True)
    assert zero.model.zero_init_residual is True
    args = build_parser().parse_args(
        ["analyze", "degradation", "--out", "x", "--zero-init-residual"]
    )
    assert args.zero_init_residual is True
    args = build_parser().parse_args(["analyze", "degradation", "--out", "x"])
    assert args.zero_init_residual is False and args.models == "plain20,plain56,resnet20,resnet56"


def _result(errors: dict) -> dict:
    return {
        "models": {
            name: {"final_train_error": e, "depth": int(name[-2:])} for name, e in errors.items()
        }
    }


def test_expectations_follow_he_et_al():
    good = check_expectations(
        _result({"plain20": 0.10, "plain56": 0.20, "resnet20": 0.10, "resnet56": 0.08})
    )
    assert [c["claim"] for c in good] == [
        "plain56 trains worse than plain20",
        "resnet56 trains at least as well as resnet20",
    ]
    assert all(c["holds"] for c in good)
    bad = check_expectations(
        _result({"plain20": 0.20, "plain56": 0.10, "resnet20": 0.10, "resnet56": 0.12})
    )
    assert not any(c["holds"] for c in bad)
    assert check_expectations(_result({"plain20": 0.1, "resnet20": 0.1})) == []


def test_analyze_degradation_cli_trains_each_model_and_records_curves(tmp_path, capsys):
    out, runs = tmp_path / "d", tmp_path / "runs"
    argv = [
        "analyze", "degradation", "--models", "plain20,resnet20", "--data", "digits",
        "--epochs", "2", "--batch-size", "32", "--train-subset", "128",
        "--test-subset", "0", "--out", str(out), "--runs-dir", str(runs),
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "degradation.json").read_text())
    assert result["command"] == shlex.join(["resnetkit", *argv])  # as it was typed
    assert list(result["models"]) == ["plain20", "resnet20"]
    test_images = len(load_data("digits").splits["test"])
    assert result["train_images"] == 128
    assert result["test_images"] == result["test_images_per_epoch"] == test_images
    assert result["recipe"]["data"]["train_subset"] == 128
    for name, row in result["models"].items():
        assert row["epoch"] == [1, 2]
        for key in ("train_error", "test_error", "train_loss", "test_loss"):
            assert len(row[key]) == 2 and all(np.isfinite(row[key]))
        assert all(0 <= e <= 1 for e in row["train_error"] + row["test_error"])
        # The callback's last-epoch test error is the final model's on the same (whole)
        # test split, which train() measures on its own with model.evaluate.
        assert row["test_error"][-1] == pytest.approx(row["final_test_error"], abs=1e-6)
        assert load_config(runs / name / "config.yaml") == degradation_config(
            name, data="digits", epochs=2, batch_size=32, train_subset=128
        )
        history = (runs / name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["test_accuracy"] for r in history] == [
            pytest.approx(1 - e) for e in row["test_error"]
        ]
        assert row["wall_seconds"] >= row["train_seconds"] > 0
    assert result["expectations"] == []  # one depth per family: nothing to compare
    with Image.open(out / "degradation.png") as png:
        assert png.format == "PNG" and png.width > 500
    printed = capsys.readouterr().out
    assert "plain20" in printed and "train error" in printed and "degradation.json" in printed
