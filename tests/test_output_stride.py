"""Dense-prediction backbones: ``output_stride`` replaces strides by dilation, keeps every
weight's shape, and computes at every pixel what the strided network computes at every
stride-th one."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import fill_weights

from resnetkit.models import create_model, load_model


@pytest.mark.parametrize(
    ("name", "output_stride", "dilations"),
    [
        ("resnet18", 8, {"stage3": 2, "stage4": 4}),  # basic blocks
        ("resnet18", 16, {"stage3": 1, "stage4": 2}),
        ("resnet50_keras", 8, {"stage3": 2, "stage4": 4}),  # stride in the 1×1 (Caffe)
        ("resnet50v2_keras", 16, {"stage3": 2, "stage4": 2}),  # stride in a stage's last block
        ("resnext50_32x4d", 8, {"stage3": 2, "stage4": 4}),  # grouped 3×3
    ],
)
def test_dilated_features_are_the_strided_ones_at_every_pixel(name, output_stride, dilations):
    shape = (67, 45, 3)  # odd sizes: the strided convolutions' ceil(H/2) must line up too
    plain = create_model(name, input_shape=shape, include_top=False)
    dense = create_model(name, input_shape=shape, include_top=False, output_stride=output_stride)
    assert [w.shape for w in dense.weights] == [w.shape for w in plain.weights]
    fill_weights(plain, seed=1)
    dense.set_weights(plain.get_weights())
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    strided, dilated = plain.feature_extractor()(x), dense.feature_extractor()(x)
    for feature, info in dense.feature_info.items():
        assert info.stride == min(plain.feature_info[feature].stride, output_stride)
        step = plain.feature_info[feature].stride // info.stride
        assert dilated[feature].shape[1] == -(-shape[0] // info.stride)
        np.testing.assert_allclose(
            np.asarray(dilated[feature])[:, ::step, ::step],
            np.asarray(strided[feature]),
            rtol=1e-5,
            atol=1e-5,
            err_msg=feature,
        )
    assert {k: dense.feature_info[k].dilation for k in dilations} == dilations


def test_output_stride_is_saved_with_the_model(tmp_path):
    model = create_model("resnet18", input_shape=(40, 40, 3), output_stride=16)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert again.get_config()["output_stride"] == 16
    assert again.feature_info["stage4"].stride == 16
    x = np.ones((1, 40, 40, 3), "float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(again(x)))


def test_a_cifar_network_is_already_at_stride_4():
    plain = create_model("resnet20", include_top=False)
    dense = create_model("resnet20", include_top=False, output_stride=8)
    assert plain.count_params() == dense.count_params()
    assert dense.feature_info["stage3"].stride == 4 and dense.feature_info["stage3"].dilation == 1


@pytest.mark.parametrize("bad", [4, 12, True, "8"])
def test_a_bad_output_stride_names_the_option(bad):
    with pytest.raises(ValueError, match="output_stride must be 8, 16, 32 or None"):
        create_model("resnet18", output_stride=bad)


def test_the_block_that_loses_its_stride_keeps_the_previous_dilation():
    """torchvision's rule: stage 4's first block at dilation 2, the next at 4 (output
    stride 8); its shortcut convolution has stride 1."""
    model = create_model("resnet18", output_stride=8)
    rates = {
        name: (tuple(layer.dilation_rate), tuple(layer.strides))
        for name in ("stage4_block1_conv1", "stage4_block1_conv2", "stage4_block2_conv1")
        for layer in [model.get_layer(name)]
    }
    assert rates == {
        "stage4_block1_conv1": ((2, 2), (1, 1)),
        "stage4_block1_conv2": ((4, 4), (1, 1)),
        "stage4_block2_conv1": ((4, 4), (1, 1)),
    }
    assert tuple(model.get_layer("stage4_block1_shortcut_conv").strides) == (1, 1)
    assert isinstance(model.get_layer("stage4_block1_conv2"), keras.layers.Conv2D)
