"""get_config round trips and .keras save/reload (safe_mode) give identical outputs."""

import keras
import numpy as np
import pytest
from helpers import fill_weights, images

from resnetkit.models import ResNet, create_model

# Each custom layer and option that has to survive a save: option-A shortcut (ZeroPadShortcut),
# PyTorch max-pool (TorchMaxPool2D), avg-pool shortcut, stochastic depth, pre-activation,
# Keras layouts, mixed precision.
CASES = [
    ("resnet_tiny", {}),
    ("seed", {"classifier_activation": "softmax", "post_add_relu": True}),
    ("resnet20", {"drop_path_rate": 0.1}),
    ("resnet20", {"shortcut": "B", "zero_init_residual": True}),
    ("plain20", {"input_shape": (28, 28, 1)}),
    ("resnet18", {"input_shape": (64, 48, 3), "num_classes": 5}),
    ("resnet50d", {"input_shape": (64, 64, 3), "include_top": False, "pooling": "max"}),
    ("resnetv2_50", {"input_shape": (64, 64, 3)}),
    ("resnet50v2_keras", {"input_shape": (64, 64, 3)}),
    ("resnet_tiny", {"dtype": "mixed_bfloat16"}),
]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_config_round_trip(name, options):
    model = create_model(name, **options)
    config = model.get_config()
    clone = ResNet.from_config(config)
    assert clone.get_config() == config
    assert [w.path for w in clone.weights] == [w.path for w in model.weights]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_keras_file_round_trip(name, options, tmp_path):
    model = create_model(name, **options)
    fill_weights(model)
    shape = (2, *model.input_shape[1:])
    x = images(shape)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, ResNet)
    assert loaded.get_config() == model.get_config()
    assert loaded.feature_info == model.feature_info
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))


def test_trainable_flag_survives_config():
    model = create_model("resnet_tiny")
    model.trainable = False
    assert ResNet.from_config(model.get_config()).trainable is False
