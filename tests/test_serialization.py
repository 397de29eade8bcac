"""Serialization: the get_config round trip and the .keras save/reload (safe mode) of every
representative model run in ``tests/harness.py`` (``tests/test_models.py``); here, what the
harness does not cover."""

from resnetkit.models import ResNet, create_model


def test_trainable_flag_survives_config():
    model = create_model("resnet_tiny")
    model.trainable = False
    assert ResNet.from_config(model.get_config()).trainable is False
