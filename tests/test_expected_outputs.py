"""Expected-output regression: seeded logits of representative models, stored as .npz.

Weights come from ``helpers.fill_weights`` (a function of each weight's name), so any change
to what a model computes — padding, strides, layer order inside a block, BN constants —
changes the logits and fails here. After an intended change, regenerate with
``pytest tests/test_expected_outputs.py --regen-expected`` and commit the files.
"""

from pathlib import Path

import numpy as np
import pytest
from helpers import fill_weights

from resnetkit.models import create_model

EXPECTED = Path(__file__).parent / "expected"

# Odd, non-square sizes catch asymmetric-padding mistakes.
CASES = {
    "resnet_tiny": (32, 32, 3),
    "seed": (45, 39, 3),
    "resnet20": (32, 32, 3),
    "plain20": (28, 28, 1),
    "resnet8_fast": (29, 27, 1),
    "wrn16_4": (32, 32, 3),
    **dict.fromkeys(
        [
            "resnet18",
            "resnet50",
            "resnext50_32x4d",
            "resnet18d",
            "resnet50d",
            "resnetv2_50",
            "resnet50_keras",
            "resnet50v2_keras",
        ],
        (67, 53, 3),
    ),
}


def pattern_images(shape: tuple[int, ...]) -> np.ndarray:
    """Deterministic, structured test images from a formula (no RNG whose stream may change)."""
    n, h, w, c = np.meshgrid(*[np.arange(d, dtype="float64") for d in shape], indexing="ij")
    x = np.sin(0.37 * h + 0.11 * w * (c + 1) + 1.7 * n) + np.cos(0.05 * h * w + 0.9 * c)
    return x.astype("float32")


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_logits(name, regen_expected):
    shape = CASES[name]
    model = create_model(name, input_shape=shape, num_classes=10)
    fill_weights(model)
    path = EXPECTED / f"{name}.npz"
    logits = model(pattern_images((2, *shape)), training=False).numpy()
    if regen_expected:
        EXPECTED.mkdir(exist_ok=True)
        np.savez_compressed(path, logits=logits)  # regeneration mode: write, compare nothing
        return
    assert path.is_file(), f"missing {path}: run pytest with --regen-expected once"
    stored = np.load(path)
    scale = np.abs(stored["logits"]).max()
    assert scale > 0
    np.testing.assert_allclose(logits, stored["logits"], rtol=1e-4, atol=1e-5 * scale)
