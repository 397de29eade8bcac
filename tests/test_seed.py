"""The original article's network and functions."""

import keras
import numpy as np
from helpers import fill_weights, images

from resnetkit.models import count_params, create_model
from resnetkit.seed import residual_block, resnet_model


def test_resnet_model_matches_the_article_summary():
    model = resnet_model(input_shape=(224, 224, 3), num_classes=10)
    assert count_params(model) == (751_370, 754_058)
    assert model.output_shape == (None, 10)
    assert model.get_layer("head_fc").activation.__name__ == "softmax"
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:5] == ["InputLayer", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"]
    assert kinds.count("Add") == 10
    assert kinds[-2:] == ["GlobalAveragePooling2D", "Dense"]
    stem = model.get_layer("stem_conv")
    assert (stem.kernel_size, stem.strides, stem.padding, stem.use_bias) == (
        (7, 7),
        (2, 2),
        "same",
        True,
    )
    assert model.get_layer("stem_pool").padding == "valid"


def test_no_relu_after_the_add_unless_asked():
    names = {layer.name for layer in resnet_model().layers}
    assert "stage1_block1_out" not in names
    corrected = resnet_model(post_add_relu=True)
    assert isinstance(corrected.get_layer("stage1_block1_out"), keras.layers.ReLU)
    assert count_params(corrected) == (751_370, 754_058)


def test_residual_block_is_the_article_block():
    inputs = keras.Input((16, 16, 64))
    outputs = residual_block(residual_block(inputs, 64), 64)  # callable twice: unique names
    block = keras.Model(inputs, outputs)
    kinds = [type(layer).__name__ for layer in block.layers[1:8]]
    assert kinds == [
        "Conv2D",
        "BatchNormalization",
        "ReLU",
        "Conv2D",
        "BatchNormalization",
        "Add",
        "Conv2D",
    ]
    assert all(layer.use_bias for layer in block.layers if isinstance(layer, keras.layers.Conv2D))
    # F(x) + x: with the second BN's gamma and beta at zero the block is the identity.
    for layer in block.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(np.zeros(64))
    x = images((1, 16, 16, 64))
    np.testing.assert_allclose(block(x), x, rtol=1e-6)


def test_residual_block_rejects_a_channel_mismatch():
    try:
        residual_block(keras.Input((8, 8, 3)), 64)
    except ValueError as e:
        assert "filters=64" in str(e) and "got 3" in str(e)
    else:
        raise AssertionError("expected a ValueError")


def test_article_function_equals_zoo_variant():
    article = resnet_model(input_shape=(64, 64, 3), num_classes=10)
    zoo = create_model("seed", input_shape=(64, 64, 3), classifier_activation="softmax")
    fill_weights(article)
    fill_weights(zoo)
    x = images((2, 64, 64, 3))
    np.testing.assert_array_equal(article(x), zoo(x))
