"""Building models: the harness over the representative models (tests/harness.py), then
options, layouts and the errors for bad options."""

import harness
import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import fill_weights, images

import resnetkit
from resnetkit.models import create_model, get_variant, list_models


@pytest.mark.parametrize("case", harness.params())
def test_representative_model(case, tmp_path, regen_expected):
    """Config round trip, expected logits, .keras reload, features and gradients: see
    ``tests/harness.py``, which holds the one list of representative models."""
    harness.check_model(case, tmp_path, regen=regen_expected)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("resnet50_keras", "ResNet50"), ("resnet50v2_keras", "ResNet50V2")],
)
def test_keras_layouts_compute_what_keras_applications_computes(ours, theirs):
    reference = getattr(keras.applications, theirs)(weights=None, input_shape=(64, 64, 3))
    fill_weights(reference)
    model = create_model(ours, input_shape=(64, 64, 3), classifier_activation="softmax")
    for layer in reference.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    x = images((2, 64, 64, 3))
    np.testing.assert_allclose(model(x).numpy(), reference(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("name", ["resnet18", "resnet20", "seed"])
def test_any_channel_count_and_size(name, channels):
    model = create_model(name, input_shape=(37, 45, channels), num_classes=3)
    assert model(images((1, 37, 45, channels))).shape == (1, 3)


def test_dynamic_input_size():
    model = create_model("resnet18", input_shape=(None, None, 3), num_classes=4)
    assert model(images((1, 64, 96, 3))).shape == (1, 4)
    assert model(images((1, 40, 40, 3))).shape == (1, 4)


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({"include_top": False}, (1, 2, 2, 512)),
        ({"include_top": False, "pooling": "avg"}, (1, 512)),
        ({"include_top": False, "pooling": "max"}, (1, 512)),
        ({"pooling": "max", "num_classes": 5}, (1, 5)),
    ],
)
def test_top_and_pooling(options, shape):
    model = create_model("resnet18", input_shape=(64, 64, 3), **options)
    assert model(images((1, 64, 64, 3))).shape == shape


def test_pooling_max_really_takes_the_maximum():
    model = create_model("resnet_tiny", include_top=False, pooling="max")
    fmap = create_model("resnet_tiny", include_top=False)
    fmap.set_weights(model.get_weights())
    x = images((2, 32, 32, 3))
    np.testing.assert_allclose(model(x), np.max(fmap(x), axis=(1, 2)), rtol=1e-6)


def test_classifier_activation():
    x = images((3, 32, 32, 3))
    logits = create_model("resnet_tiny")
    probs = create_model("resnet_tiny", classifier_activation="softmax")
    probs.set_weights(logits.get_weights())
    np.testing.assert_allclose(probs(x), tf.nn.softmax(logits(x)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.sum(probs(x), axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "resnetv2_50"])
def test_zero_init_residual_makes_blocks_identities(name):
    model = create_model(name, input_shape=(32, 32, 3), zero_init_residual=True)
    spec = get_variant(name)
    last_bn = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and layer.name.endswith("_bn3" if spec.block == "bottleneck" else "_bn2")
    ]
    if spec.preact:
        zero = [layer for layer in model.layers if layer.name.endswith("_conv3")]
        assert zero and all(not np.any(layer.kernel.numpy()) for layer in zero)
    else:
        assert last_bn and all(not np.any(layer.gamma.numpy()) for layer in last_bn)
    # An identity-started block passes its input through: stage1 block1 of resnet20.
    if name == "resnet20":
        fx = model.feature_extractor(["stem", "stage1"])(images((1, 32, 32, 3)))
        np.testing.assert_allclose(fx["stage1"], np.maximum(fx["stem"], 0), rtol=1e-6)


def test_drop_path_is_linear_and_active_only_in_training():
    model = create_model("resnet20", drop_path_rate=0.2)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in drops]
    assert rates[0] == 0 or len(rates) == 8  # the first block's rate is 0: no layer
    np.testing.assert_allclose(rates, [0.2 * i / 8 for i in range(1, 9)])
    x = images((8, 32, 32, 3))
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_mixed_precision_policy_keeps_float32_logits():
    model = create_model("resnet_tiny", dtype="mixed_bfloat16")
    conv = model.get_layer("stem_conv")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    out = model(images((2, 32, 32, 3)))
    assert out.dtype == "float32"
    assert np.isfinite(out.numpy()).all()


def test_layer_names_are_stable():
    names = {layer.name for layer in create_model("resnet50").layers}
    assert {"stem_conv", "stem_bn", "stem_pool", "stage1_block1_conv1", "head_fc"} <= names
    assert {
        "stage4_block3_conv3",
        "stage1_block1_shortcut_conv",
        "stage1_block1_shortcut_bn",
    } <= names


def test_list_models_and_families():
    assert "resnet50" in list_models()
    assert list_models("plain") == ["plain20", "plain32", "plain44", "plain56", "plain110"]
    with pytest.raises(ValueError, match="'imagenet'"):
        list_models("imagenett")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: resnetkit.create_model("resnet5O"), r"unknown model 'resnet5O'.*'resnet50'"),
        (lambda: resnetkit.create_model("resnet50", num_class=3), r"'num_class'.*'num_classes'"),
        (lambda: resnetkit.create_model("resnet50", num_classes=0), "num_classes.*got 0"),
        (lambda: resnetkit.create_model("resnet50", num_classes=2.5), "num_classes.*got 2.5"),
        (lambda: resnetkit.create_model("resnet50", input_shape=(16, 64, 3)), "too small.*32"),
        (lambda: resnetkit.create_model("resnet20", input_shape=(4, 4, 3)), "too small.*8"),
        (lambda: resnetkit.create_model("resnet50", input_shape=(64, 64)), "input_shape.*64, 64"),
        (lambda: resnetkit.create_model("resnet50", pooling="mean"), "pooling.*'mean'"),
        (lambda: resnetkit.create_model("resnet50", classifier_activation="relu"), "'relu'"),
        (lambda: resnetkit.create_model("resnet50", drop_path_rate=1.5), "drop_path_rate.*1.5"),
        (lambda: resnetkit.create_model("resnet20", shortcut="E"), "shortcut.*'E'"),
        (lambda: resnetkit.create_model("plain20", shortcut="A"), "fixed shortcut"),
        (lambda: resnetkit.create_model("plain20", zero_init_residual=True), "no shortcuts"),
        (lambda: resnetkit.create_model("resnet50_keras", post_add_relu=False), "post_add_relu"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "resnet50d"])
def test_fill_weights_helper_is_deterministic(name):
    a, b = create_model(name), create_model(name)
    fill_weights(a)
    fill_weights(b)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batchnorm_trains_like_keras(dtype):
    """Our BatchNormalization (fused kernel in training) matches Keras' layer."""
    import tensorflow as tf

    from resnetkit.models.layers import BatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (8, 5, 5, 6)), tf.float32)
    # Per-element weights: with per-channel ones, d loss / d gamma is exactly 0 and both
    # layers return float rounding noise (~1e-4) that differs between CPUs.
    weights = tf.constant(rng.normal(0.0, 1.0, (8, 5, 5, 6)), tf.float32)
    ours = BatchNormalization(momentum=0.9, epsilon=1e-3, dtype=dtype)
    keras_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, dtype=dtype)
    results = []
    for layer in (ours, keras_bn):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 6))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    tol = 1e-4 if dtype == "float32" else 5e-2
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol
        )
    np.testing.assert_allclose(ours(x, training=False), keras_bn(x, training=False), atol=1e-6)


@pytest.mark.parametrize("size", [9, 10])  # odd and even: stride 2 leaves a row unused or not
@pytest.mark.parametrize("traced", [False, True])
def test_padded_conv_matches_zero_padding_with_gradients(size, traced):
    """PaddedConv2D (explicit padding, its own gradient) computes what ZeroPadding2D + a
    "valid" Conv2D computes, outputs and both gradients, eagerly and in a tf.function."""
    from resnetkit.models.layers import PaddedConv2D

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(3, size, size, 4)), tf.float32)
    weights = tf.constant(rng.normal(size=(3, (size + 1) // 2, (size + 1) // 2, 6)), tf.float32)
    ours = PaddedConv2D(6, 3, strides=2, pad=1)
    reference = keras.Sequential([keras.layers.ZeroPadding2D(1), keras.layers.Conv2D(6, 3, 2)])
    ours.build(x.shape)
    reference.build(x.shape)
    reference.layers[1].kernel.assign(ours.kernel)
    reference.layers[1].bias.assign(rng.normal(size=6))
    ours.bias.assign(reference.layers[1].bias)

    def gradients(layer, conv):
        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x) * weights)
            return [loss, *tape.gradient(loss, [x, conv.kernel])]

        return tf.function(run)() if traced else run()

    results = [gradients(ours, ours), gradients(reference, reference.layers[1])]
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert float(tf.reduce_max(tf.abs(results[0][1]))) > 0


# 12 > the 7-pixel input: only the centre tap sees it; groups: ResNeXt's dilated stages.
@pytest.mark.parametrize(("rate", "groups"), [(2, 1), (12, 1), (2, 2)])
def test_dilated_conv_matches_keras_conv_with_gradients(rate, groups):
    """DilatedConv2D (TensorFlow's dilated kernel) computes what Keras' Conv2D computes
    (space-to-batch), outputs and both gradients, as trained ("same") and as exported
    (padded, then "valid")."""
    from resnetkit.models.layers import DilatedConv2D, explicit_padding

    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(2, 7, 9, 4)), tf.float32)
    weights = tf.constant(rng.normal(size=(2, 7, 9, 6)), tf.float32)
    ours = DilatedConv2D(6, 3, padding="same", dilation_rate=rate, groups=groups)
    reference = keras.layers.Conv2D(6, 3, padding="same", dilation_rate=rate, groups=groups)
    ours.build(x.shape)
    reference.build(x.shape)
    reference.kernel.assign(rng.normal(size=reference.kernel.shape))
    ours.kernel.assign(reference.kernel)

    def run(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * weights)
        return [loss, *tape.gradient(loss, [x, layer.kernel])]

    for a, b in zip(run(ours), run(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with explicit_padding():
        exported = run(ours)
    for a, b in zip(exported, run(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="stride 1, 'same'"):
        DilatedConv2D(5, 3, padding="valid", dilation_rate=2)
