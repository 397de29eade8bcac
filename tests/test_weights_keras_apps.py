"""keras.applications weight files load by name and give keras.applications' outputs."""

import keras
import numpy as np
import pytest
from helpers import fill_weights, images, write_keras_h5

from resnetkit.weights import create_model
from resnetkit.weights.keras_apps import read_keras_h5

# The 101- and 152-layer cases repeat the 50-layer ones at 2-3× the time: `make test-slow`.
CASES = [
    ("resnet50_keras", "ResNet50"),
    pytest.param("resnet101_keras", "ResNet101", marks=pytest.mark.slow),
    pytest.param("resnet152_keras", "ResNet152", marks=pytest.mark.slow),
    ("resnet50v2_keras", "ResNet50V2"),
    pytest.param("resnet101v2_keras", "ResNet101V2", marks=pytest.mark.slow),
    pytest.param("resnet152v2_keras", "ResNet152V2", marks=pytest.mark.slow),
]
SIZE = (64, 64, 3)


@pytest.mark.parametrize(("ours", "theirs"), CASES)
@pytest.mark.parametrize("include_top", [True, False])
def test_published_file_layout_loads_exactly(ours, theirs, include_top, tmp_path):
    reference = getattr(keras.applications, theirs)(
        weights=None, include_top=include_top, input_shape=SIZE, pooling=None
    )
    fill_weights(reference, seed=7)
    path = tmp_path / f"{theirs}.h5"
    write_keras_h5(reference, path)

    model = create_model(
        ours,
        weights=path,
        include_top=include_top,
        input_shape=SIZE,
        classifier_activation="softmax" if include_top else None,
    )
    x = images((2, *SIZE)) * 50.0  # the scale of caffe-preprocessed pixels
    diff = np.max(np.abs(model(x).numpy() - reference(x).numpy()))
    assert diff <= 1e-5, f"max abs difference {diff}"


def test_reader_matches_by_name_not_position(tmp_path):
    reference = keras.applications.ResNet50(weights=None, input_shape=SIZE)
    fill_weights(reference)
    path = tmp_path / "r50.h5"
    write_keras_h5(reference, path)
    arrays = read_keras_h5(path)
    assert arrays["conv1_conv/kernel"].shape == (7, 7, 3, 64)
    np.testing.assert_array_equal(
        arrays["conv5_block3_3_bn/moving_variance"],
        reference.get_layer("conv5_block3_3_bn").moving_variance.numpy(),
    )


def test_not_a_keras_file_is_named(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match=r"bad\.h5"):
        read_keras_h5(bad)
