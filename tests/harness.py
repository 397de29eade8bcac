"""One test harness for the zoo's models, in the style of keras-hub's ``run_vision_backbone_test``.

``check_model(case, tmp_path)`` makes every check a model must pass, in one call:

- config round trip: ``get_config`` → ``from_config`` gives the same config, the same weight
  paths and, with the same weights, the same outputs;
- the forward pass is finite, and its logits match the ones committed in
  ``tests/expected/CASE.npz`` (``--regen-expected`` rewrites them instead);
- a ``.keras`` save reloaded in safe mode is a ``ResNet`` with the same config, feature info
  and outputs;
- every named feature map has the stride and channels that ``feature_info`` claims;
- a backward pass gives every trainable weight a nonzero gradient.

``MODELS`` is the one list of representative models that the harness runs over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import fill_weights

from resnetkit.models import ResNet, create_model, get_variant

EXPECTED = Path(__file__).parent / "expected"
NUM_CLASSES = 10  # a small head; the logits in tests/expected/ have 10 columns


@dataclass(frozen=True)
class Case:
    """One model of the harness: a zoo name, an input shape, and options for ``create_model``.

    ``expected`` names the file in ``tests/expected/`` its logits are compared with (by
    default the case's id); ``None`` for a case whose logits depend on the CPU.
    """

    name: str
    input_shape: tuple[int, int, int]
    options: dict = field(default_factory=dict)
    label: str = ""  # what the options test; the case id is ``name-label``
    expected: str | None = ""  # "": the case id
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}-{self.label}" if self.label else self.name

    @property
    def expected_file(self) -> Path | None:
        if self.expected is None:
            return None
        return EXPECTED / f"{self.expected or self.id}.npz"


# Odd, non-square sizes catch asymmetric-padding mistakes; the stored logits were computed at
# these sizes. ImageNet models at 67×53 (not 224) keep the suite fast: every stage still has
# a map larger than 1×1.
_IN = (67, 53, 3)

# One model per block type, stem, shortcut and layout; then each custom layer and option that
# has to survive a save: option-A shortcut (ZeroPadShortcut) in resnet20, PyTorch max-pool
# (TorchMaxPool2D) in the ImageNet layouts, avg-pool shortcut (resnet*d), stochastic depth,
# pre-activation, the Keras layouts, a headless model, mixed precision, stored preprocessing.
MODELS = [
    Case("resnet_tiny", (32, 32, 3)),
    Case("seed", (45, 39, 3)),
    Case("resnet20", (32, 32, 3)),
    Case("plain20", (28, 28, 1)),
    Case("resnet8_fast", (29, 27, 1)),
    Case("wrn16_4", (32, 32, 3)),
    Case("resnet18", _IN),
    Case("resnet50", _IN),
    Case("resnext50_32x4d", _IN),
    Case("resnet18d", _IN),
    Case("resnet50d", _IN),
    Case("resnetv2_50", _IN),
    Case("resnet50_keras", _IN),
    Case("resnet50v2_keras", _IN),
    # Options. Stochastic depth is off in inference: resnet20's own logits.
    Case("resnet20", (32, 32, 3), {"drop_path_rate": 0.1}, "drop_path", expected="resnet20"),
    Case("resnet20", (32, 32, 3), {"shortcut": "B", "zero_init_residual": True}, "shortcut_b"),
    Case("seed", (45, 39, 3), {"classifier_activation": "softmax", "post_add_relu": True}, "top"),
    Case("resnet18d", _IN, {"include_top": False, "pooling": "max"}, "headless_max"),
    # Preprocessing is metadata: the computation, and so the logits, are resnet18's.
    Case(
        "resnet18",
        _IN,
        {
            "preprocessing": {
                "mode": "caffe",
                "mean": [103.939, 116.779, 123.68],
                "std": [1.0, 1.0, 1.0],
                "crop_size": 67,
                "resize_size": 72,
                "interpolation": "bicubic",
            }
        },
        "preprocessing",
        expected="resnet18",
    ),
    # bfloat16 rounding differs between CPU kernels (AVX512_BF16, AMX, emulated): no stored file.
    Case("resnet_tiny", (32, 32, 3), {"dtype": "mixed_bfloat16"}, "bf16", expected=None),
    # The deep ends of the zoo repeat the blocks above at many times the cost: `make test-slow`.
    Case("resnet110", (32, 32, 3), slow=True),
    Case("resnet34", _IN, slow=True),
    Case("resnet101", _IN, slow=True),
    Case("resnet152v2_keras", _IN, slow=True),
]


def params(cases=MODELS) -> list:
    """``cases`` as pytest parameters: the case id, and the ``slow`` marker where set."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


def pattern_images(shape: tuple[int, ...]) -> np.ndarray:
    """Deterministic, structured test images from a formula (no RNG whose stream may change)."""
    n, h, w, c = np.meshgrid(*[np.arange(d, dtype="float64") for d in shape], indexing="ij")
    x = np.sin(0.37 * h + 0.11 * w * (c + 1) + 1.7 * n) + np.cos(0.05 * h * w + 0.9 * c)
    return x.astype("float32")


def build(case: Case) -> ResNet:
    """The case's model, not yet filled with weights."""
    return create_model(
        case.name, input_shape=case.input_shape, **{"num_classes": NUM_CLASSES, **case.options}
    )


def logits(model: ResNet, case: Case) -> np.ndarray:
    """Inference outputs for two pattern images, with weights from ``fill_weights``."""
    fill_weights(model)
    x = pattern_images((2, *case.input_shape))
    return keras.ops.convert_to_numpy(model(x, training=False))


def write_expected(case: Case, outputs: np.ndarray) -> None:
    case.expected_file.parent.mkdir(exist_ok=True)
    np.savez_compressed(case.expected_file, logits=outputs)


def check_expected(case: Case, outputs: np.ndarray) -> None:
    """``outputs`` against the committed logits: any change to what a model computes —
    padding, strides, layer order in a block, BN constants — fails here."""
    path = case.expected_file
    assert path.is_file(), f"missing {path}: run pytest with --regen-expected once"
    stored = np.load(path)["logits"]
    scale = np.abs(stored).max()
    assert scale > 0
    np.testing.assert_allclose(outputs, stored, rtol=1e-4, atol=1e-5 * scale)


def check_model(case: Case, tmp_path: Path, *, regen: bool = False) -> None:
    """Every check of the module docstring for one case; ``regen`` writes the expected file
    instead of comparing with it."""
    keras.utils.set_random_seed(0)  # stochastic depth in the backward pass: the same each run
    model = build(case)
    clone = _check_config_round_trip(model)

    x = pattern_images((2, *case.input_shape))
    outputs = logits(model, case)
    assert outputs.shape == (2, _outputs_per_image(model, case))
    assert np.isfinite(outputs).all()
    if case.expected_file is not None:
        (write_expected if regen else check_expected)(case, outputs)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x, training=False)), outputs)

    _check_keras_file(model, x, outputs, tmp_path)
    _check_features(model, case, x)
    _check_gradients(model, x[:1])  # one image is enough to reach every weight, at half the cost


def _outputs_per_image(model: ResNet, case: Case) -> int:
    """The classifier's outputs, or the last stage's channels for a headless pooled model."""
    if case.options.get("include_top", True):
        return case.options.get("num_classes", NUM_CLASSES)
    return list(model.feature_info.values())[-1].channels


def _check_config_round_trip(model: ResNet) -> ResNet:
    config = model.get_config()
    clone = ResNet.from_config(config)
    assert clone.get_config() == config
    assert [w.path for w in clone.weights] == [w.path for w in model.weights]
    return clone


def _check_keras_file(model: ResNet, x: np.ndarray, outputs: np.ndarray, tmp_path: Path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, ResNet)
    assert loaded.get_config() == model.get_config()
    assert loaded.feature_info == model.feature_info
    assert loaded.preprocessing == model.preprocessing
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x, training=False)), outputs)


def _check_features(model: ResNet, case: Case, x: np.ndarray) -> None:
    """Each named feature map has the channels ``feature_info`` claims and the size its stride
    implies: every layer pads so that a stride ``s`` gives ``ceil(size / s)``."""
    spec = get_variant(case.name)
    features = model.feature_extractor()(x)
    assert list(features) == ["stem"] + [f"stage{i}" for i in range(1, len(spec.depths) + 1)]
    for name, info in model.feature_info.items():
        fmap = features[name]
        assert fmap.shape[-1] == info.channels, name
        want = [math.ceil(size / info.stride) for size in case.input_shape[:2]]
        if spec.stem == "seed" and name != "stem":
            # The article's 3×3/2 max-pool has "valid" padding: it drops the last row.
            want = [(math.ceil(size / 2) - 3) // 2 + 1 for size in case.input_shape[:2]]
        assert list(fmap.shape[1:3]) == want, name
    strides = [i.stride for i in model.feature_info.values()]
    if spec.layout == "keras_v2":  # Keras' V2 strides at the end of a stage, not the start
        assert strides == [2, 8, 16, 32, 32]
    elif spec.family in ("imagenet", "keras"):
        assert strides == [2, 4, 8, 16, 32]


def _check_gradients(model: ResNet, x: np.ndarray) -> None:
    """A backward pass reaches every trainable weight (no layer is cut off the loss)."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(tf.cast(model(x, training=True), tf.float32)))
    grads = tape.gradient(loss, model.trainable_weights)
    dead = [
        w.path
        for w, g in zip(model.trainable_weights, grads, strict=True)
        if g is None or not np.any(keras.ops.convert_to_numpy(g))
    ]
    assert model.trainable_weights and not dead
