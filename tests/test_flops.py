"""The MAC counter on hand-computed layers."""

import keras
import pytest

from resnetkit.models import count_macs, create_model


def test_hand_computed_model():
    x = inputs = keras.Input((10, 12, 8))
    x = keras.layers.Conv2D(16, 3, padding="same")(x)  # 10*12 * 3*3*8*16
    x = keras.layers.Conv2D(32, 3, strides=2, groups=4)(x)  # 4*5 * 3*3*(16/4)*32
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 4*5 * 3*3*32
    x = keras.layers.MaxPooling2D(2)(x)  # 2*2*32 outputs * 4
    x = keras.layers.GlobalAveragePooling2D()(x)  # 2*2*32 inputs
    x = keras.layers.Dense(10)(x)  # 32*10
    count = count_macs(keras.Model(inputs, x))
    assert count.macs == 10 * 12 * 9 * 8 * 16 + 4 * 5 * 9 * 4 * 32 + 4 * 5 * 9 * 32 + 32 * 10
    assert count.pooling == 2 * 2 * 32 * 4 + 2 * 2 * 32


def test_nested_models_are_counted_through():
    backbone = create_model("resnet_tiny", include_top=False, pooling="avg")
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(3)(backbone(inputs))
    wrapped = keras.Model(inputs, outputs)
    assert count_macs(wrapped).macs == count_macs(backbone).macs + 32 * 3


def test_torch_max_pool_is_counted():
    assert count_macs(create_model("resnet18")).pooling == 56 * 56 * 64 * 9 + 7 * 7 * 512


def test_unknown_size_is_an_error():
    with pytest.raises(ValueError, match="fixed input_shape"):
        count_macs(create_model("resnet_tiny", input_shape=(None, None, 3)))
