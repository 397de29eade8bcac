"""Every variant's parameter counts and MACs equal the published figures (REFERENCE.md)."""

import keras
import pytest

from resnetkit.models import count_macs, count_params, create_model, list_models

# Trainable parameters (learnable weights only), from torchvision 0.29.1, timm 1.0.31,
# He et al. 2015 (CIFAR, option A), Zagoruyko & Komodakis 2016, and the article's summary.
TRAINABLE = {
    "seed": 751_370,
    "resnet20": 269_722,
    # resnetkit's own, counted by hand (3 input channels): stem 864 + 64; blocks 18,560
    # + 57,728 + 230,144 (1×1 projections in stages 2-3); classifier 1,290.
    "resnet8_fast": 308_650,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
    "plain20": 269_722,
    "plain32": 464_154,
    "plain44": 658_586,
    "plain56": 853_018,
    "plain110": 1_727_962,
    "wrn16_4": 2_748_890,
    "wrn16_8": 10_961_370,
    "wrn28_10": 36_479_194,
    "wrn40_4": 8_949_210,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "resnet18d": 11_708_744,
    "resnet50d": 25_576_264,
    "resnetv2_50": 25_549_352,
}

# keras.applications count_params() (BN statistics and conv biases included), keras 3.15.1.
KERAS_TOTAL = {
    "resnet50_keras": 25_636_712,
    "resnet101_keras": 44_707_176,
    "resnet152_keras": 60_419_944,
    "resnet50v2_keras": 25_613_800,
    "resnet101v2_keras": 44_675_560,
    "resnet152v2_keras": 60_380_648,
}

# Forward GMACs at the default input: torchvision's "GFLOPS" column and He et al.
GMACS = {
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50": 4.089,
    "resnet101": 7.801,
    "resnet152": 11.514,
    "resnext50_32x4d": 4.230,
    "resnext101_32x8d": 16.414,
    "resnext101_64x4d": 15.460,
    "wide_resnet50_2": 11.398,
    "wide_resnet101_2": 22.753,
    "resnet20": 0.0406,
    # by hand at 28×28×3: stem 169,344 + blocks 3,612,672 + 2,809,856 + 3,670,016 + fc 1,280
    "resnet8_fast": 0.0103,
    "resnet32": 0.0689,
    "resnet44": 0.0972,
    "resnet56": 0.1255,
    "resnet110": 0.2529,
    "resnet1202": 2.829,
}


def test_every_variant_has_a_reference_figure():
    listed = set(list_models()) - {"resnet_tiny"}
    assert listed == set(TRAINABLE) | set(KERAS_TOTAL)


def _deep_is_slow(names) -> list:
    """The deepest variants (1202 layers; keras' 101/152) go to the slow tier: their
    shallower siblings cover the same code by default."""
    slow = ("resnet1202", "resnet101_keras", "resnet152_keras", "resnet101v2_keras")
    slow += ("resnet152v2_keras",)
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in sorted(names)]


@pytest.mark.parametrize("name", _deep_is_slow(TRAINABLE))
def test_trainable_params(name):
    model = create_model(name)
    assert count_params(model)[0] == TRAINABLE[name]
    if name in GMACS:
        decimals = len(str(GMACS[name]).split(".")[1])
        assert round(count_macs(model).macs / 1e9, decimals) == GMACS[name]


def test_seed_total_params_as_in_the_article():
    assert count_params(create_model("seed", classifier_activation="softmax")) == (
        751_370,
        754_058,
    )


def test_option_b_counts():
    assert count_params(create_model("resnet20", shortcut="B"))[0] == 272_474
    assert count_params(create_model("resnet56", shortcut="B"))[0] == 855_770


@pytest.mark.parametrize("name", _deep_is_slow(KERAS_TOTAL))
def test_keras_layout_equals_keras_applications(name):
    """Same counts, and the same weighted layers by name and shape, as keras.applications."""
    ours = create_model(name)
    assert ours.count_params() == KERAS_TOTAL[name]
    app_name = {"resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152"}[
        name.replace("_keras", "").replace("v2", "")
    ] + ("V2" if "v2" in name else "")
    theirs = getattr(keras.applications, app_name)(weights=None)

    def weighted(model):
        return {
            layer.name: [tuple(w.shape) for w in layer.weights]
            for layer in model.layers
            if layer.weights
        }

    assert weighted(ours) == weighted(theirs)
