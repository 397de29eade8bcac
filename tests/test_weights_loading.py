"""State dicts (.safetensors, .npz, .pth) into resnetkit: strict by name, adapted on request."""

import logging
import pickle

import numpy as np
import pytest
import torch
from helpers import fill_weights, images
from safetensors.numpy import save_file

from resnetkit.weights import create_model, read_state_dict, torch_state_dict
from resnetkit.weights.adapt import adapt_input_conv

SIZE = (64, 64, 3)


def exported(name, tmp_path, suffix=".safetensors", **options):
    model = create_model(name, input_shape=SIZE, **options)
    fill_weights(model)
    state = torch_state_dict(model)
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    elif suffix == ".npz":
        np.savez(path, **state)
    else:
        torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, path)
    return model, state, path


@pytest.mark.parametrize(
    "name", ["resnet18", "resnet50d", "resnext50_32x4d", "resnetv2_50", "resnet20"]
)
@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".npz"])
def test_round_trip_through_a_state_dict(name, suffix, tmp_path):
    source, state, path = exported(name, tmp_path, suffix)
    assert not any("_block" in k or k.startswith("stem_") for k in state)  # PyTorch names
    model = create_model(name, input_shape=SIZE, weights=path)
    x = images((2, *SIZE))
    np.testing.assert_array_equal(model(x), source(x))


def test_torchvision_key_names_and_layouts(tmp_path):
    _, state, _ = exported("resnet50", tmp_path)
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert state["layer4.2.bn3.running_var"].shape == (2048,)
    assert state["layer4.2.bn3.num_batches_tracked"].dtype == np.int64
    assert state["fc.weight"].shape == (1000, 2048)
    _, state, _ = exported("resnext50_32x4d", tmp_path)
    assert state["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)  # 32 groups of 4
    _, state, _ = exported("resnet50d", tmp_path)
    assert {
        "conv1.0.weight",
        "conv1.3.weight",
        "conv1.6.weight",
        "layer2.0.downsample.1.weight",
    } <= set(state)
    _, state, _ = exported("resnetv2_50", tmp_path)
    assert state["head.fc.weight"].shape == (1000, 2048, 1, 1)
    assert "stages.3.blocks.2.norm3.weight" in state and "norm.running_mean" in state


def test_missing_unexpected_and_misshaped_keys_are_all_listed(tmp_path):
    _, state, _ = exported("resnet18", tmp_path)
    del state["layer2.1.conv1.weight"]
    state["layer9.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    state["layer3.0.bn1.weight"] = np.zeros((7,), np.float32)
    path = tmp_path / "broken.safetensors"
    save_file(state, path)
    with pytest.raises(ValueError) as err:
        create_model("resnet18", input_shape=SIZE, weights=path)
    text = str(err.value)
    assert "broken.safetensors" in text
    assert "missing in the file (1):\n    stage2_block2_conv1/kernel" in text
    assert "not in the model (1):\n    layer9.0.conv1.weight" in text
    assert "stage3_block1_bn1/gamma: file (7,) vs model (256,)" in text


def test_other_class_count_reinitializes_the_head_and_says_so(tmp_path, caplog):
    source, _, path = exported("resnet18", tmp_path)
    with caplog.at_level(logging.WARNING, logger="resnetkit"):
        model = create_model("resnet18", input_shape=SIZE, num_classes=5, weights=path)
    assert "re-initialized: the weights have 1000 classes, the model has 5" in caplog.text
    np.testing.assert_array_equal(
        model.get_layer("stage4_block2_conv2").kernel.numpy(),
        source.get_layer("stage4_block2_conv2").kernel.numpy(),
    )
    headless = create_model("resnet18", input_shape=SIZE, include_top=False, weights=path)
    np.testing.assert_array_equal(
        headless(images((1, *SIZE))),
        source.feature_extractor(["stage4"])(images((1, *SIZE)))["stage4"],
    )


@pytest.mark.parametrize("name", ["resnet18", "resnet50d"])
def test_grey_input_gives_what_rgb_gives_for_grey_images(name, tmp_path):
    source, _, path = exported(name, tmp_path)
    grey = create_model(name, input_shape=(64, 64, 1), weights=path)
    g = images((2, 64, 64, 1))
    np.testing.assert_allclose(grey(g), source(np.repeat(g, 3, axis=-1)), rtol=1e-4, atol=1e-4)


def test_more_channels_keep_the_response_to_alike_channels():
    kernel = np.random.default_rng(0).normal(size=(7, 7, 3, 8))
    six = adapt_input_conv(kernel, 6)
    assert six.shape == (7, 7, 6, 8)
    np.testing.assert_allclose(six.sum(axis=2), kernel.sum(axis=2))
    five = adapt_input_conv(kernel, 5)
    np.testing.assert_allclose(five, np.concatenate([kernel, kernel[:, :, :2]], axis=2) * 0.6)
    np.testing.assert_allclose(adapt_input_conv(kernel, 1)[:, :, 0], kernel.sum(axis=2))


def test_keras_layout_refuses_a_state_dict(tmp_path):
    _, _, path = exported("resnet50", tmp_path)
    with pytest.raises(ValueError, match="'resnet50_keras' uses the 'keras_v1' layout"):
        create_model("resnet50_keras", weights=path)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the payload
def test_malicious_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": _Payload()}, f)
    torch.save({"fc.weight": _Payload()}, tmp_path / "evil_zip.pth")
    for p in (path, tmp_path / "evil_zip.pth"):
        with pytest.raises(ValueError, match="refused to load"):
            read_state_dict(p)
    assert not (tmp_path / "PWNED").exists()


def test_unknown_format_and_missing_file_are_named(tmp_path):
    (tmp_path / "w.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"w.ckpt.*unsupported"):
        read_state_dict(tmp_path / "w.ckpt")
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        create_model("resnet18", weights=tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match=r"weights\.pth"):
        create_model("resnet18", weights="weights.pth")  # a missing file, not a registry typo
    with pytest.raises(ValueError, match=r"'resnet50\.tv2_in1k'"):
        create_model("resnet50", weights="resnet50.tv2_inlk")
