"""Segmentation models: torchvision's exact counts, every head on any input size, output
strides, saving, and errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import resnetkit
from resnetkit.tasks.segment.layers import ResizeLike
from resnetkit.tasks.segment.model import Segmenter, create_segmenter, list_segmenters


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    ("name", "aux", "count"),
    [  # torchvision 0.29.1, num_classes=21, weights_backbone=None (trainable BatchNorm)
        ("fcn_resnet50", False, 32_957_013),
        ("fcn_resnet50", True, 35_322_218),
        ("deeplabv3_resnet50", False, 39_638_869),
        ("deeplabv3_resnet50", True, 42_004_074),
    ],
)
def test_torchvision_models_have_its_exact_parameter_counts(name, aux, count):
    model = create_segmenter(name, num_classes=21, aux=aux)
    assert _trainable(model) == count
    assert model.output_stride == 8  # torchvision's replace_stride_with_dilation=[F, T, T]


def test_unet_resnet34_matches_segmentation_models_pytorch():
    # smp.Unet("resnet34", classes=1): 24,436,369 parameters.
    assert _trainable(create_segmenter("unet_resnet34", num_classes=1)) == 24_436_369


@pytest.mark.parametrize("head", ["fcn", "deeplabv3", "deeplabv3plus", "unet", "fpn"])
@pytest.mark.parametrize("backbone", ["resnet18", "resnet20", "seed"])  # seed: one stage
def test_every_head_segments_an_odd_size_to_its_own_size(head, backbone):
    model = create_segmenter(f"{head}_{backbone}", num_classes=4)
    for size in ((65, 47), (32, 32)):
        logits = model(np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32"))
        assert tuple(logits.shape) == (2, *size, 4)
        assert np.isfinite(np.asarray(logits)).all()


def test_output_stride_sets_the_backbone_and_aspp_rates():
    for stride, rates in ((8, (12, 24, 36)), (16, (6, 12, 18))):
        model = create_segmenter("deeplabv3plus_resnet18", num_classes=3, output_stride=stride)
        assert model.backbone.feature_info["stage4"].stride == stride
        assert [model.get_layer(f"aspp_b{i}_conv").dilation_rate[0] for i in (1, 2, 3)] == list(
            rates
        )
    given = create_segmenter("deeplabv3_resnet18", num_classes=3, aspp_rates=(2, 4, 6))
    assert given.get_layer("aspp_b3_conv").dilation_rate == (6, 6)


def test_decoders_of_every_stride_refuse_dilation():
    with pytest.raises(ValueError, match="output_stride must be resnet18's own, 32"):
        create_segmenter("unet_resnet18", output_stride=16)


def test_a_stride_above_the_backbones_deepest_is_refused_not_ignored():
    with pytest.raises(ValueError, match=r"output_stride 16 is above resnet8_fast's deepest"):
        create_segmenter("deeplabv3plus_resnet8_fast", output_stride=16)
    model = create_segmenter("deeplabv3plus_resnet8_fast", num_classes=3)
    assert model.output_stride == 8  # the head's default 16 is more than it has: its own 8
    assert model.get_layer("aspp_b1_conv").dilation_rate == (12, 12)  # rates follow it


def test_the_auxiliary_head_gives_a_second_output():
    model = create_segmenter("fcn_resnet18", num_classes=3, aux=True)
    out = model(np.zeros((1, 40, 40, 3), "float32"))
    assert set(out) == {"logits", "aux_logits"}
    assert out["aux_logits"].shape == out["logits"].shape == (1, 40, 40, 3)


def test_a_saved_segmenter_loads_in_a_fresh_process_after_import_resnetkit(tmp_path):
    import subprocess
    import sys

    model = create_segmenter("unet_resnet8_fast", num_classes=3, input_shape=(None, None, 1))
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(1).normal(size=(1, 29, 31, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(model(x)))
    code = (
        "import numpy as np, resnetkit, sys; d = sys.argv[1];"
        "m = resnetkit.load_model(d + '/m.keras');"
        "np.testing.assert_allclose(m(np.load(d + '/x.npy')), np.load(d + '/y.npy'), atol=1e-6);"
        "print(type(m).__name__, m.get_config()['architecture'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["Segmenter", "unet_resnet8_fast"]
    assert isinstance(resnetkit.load_model(tmp_path / "m.keras"), Segmenter)


@pytest.mark.parametrize(
    ("name", "match"),
    [("unet_resnet51", "backbone of 'unet_resnet51'"), ("deeplab_resnet50", "segmentation head")],
)
def test_a_bad_name_says_which_part_is_wrong(name, match):
    with pytest.raises(ValueError, match=match):
        create_segmenter(name)


def test_the_list_covers_every_head_and_backbone():
    names = list_segmenters(["resnet50"])
    assert names == [
        "fcn_resnet50", "deeplabv3_resnet50", "deeplabv3plus_resnet50", "unet_resnet50",
        "fpn_resnet50",
    ]  # fmt: skip
    assert "unet_resnet8_fast" in list_segmenters()


@pytest.mark.parametrize(("mode", "size"), [("bilinear", (52, 37)), ("nearest", (31, 23))])
def test_resize_is_pytorchs(mode, size):
    """Bilinear as ``align_corners=False``; nearest as PyTorch's (an FPN's odd sizes)."""
    x = np.random.default_rng(2).normal(size=(1, 16, 12, 3)).astype("float32")
    ours = ResizeLike(mode)([x, np.zeros((1, *size, 1), "float32")])
    options = {"align_corners": False} if mode == "bilinear" else {}
    theirs = F.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode=mode, **options
    ).permute(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), atol=1e-5)


@pytest.mark.parametrize(("name", "aux"), [("fcn_resnet18", True), ("deeplabv3_resnet18", True)])
def test_torchvision_key_map_covers_every_weight(name, aux):
    """The map is one to one: a state dict written from one model loads every weight of a
    fresh one, which then computes the same logits (the interop tier compares with
    torchvision itself)."""
    from helpers import fill_weights

    from resnetkit.tasks.segment.torchvision_weights import (
        load_torchvision_state,
        torchvision_state,
    )

    source = create_segmenter(name, num_classes=5, aux=aux)
    fill_weights(source, seed=4)
    state = torchvision_state(source)
    assert "backbone.layer4.1.conv2.weight" in state and "aux_classifier.4.bias" in state
    assert not any(k.startswith("backbone.fc") for k in state)
    fresh = create_segmenter(name, num_classes=5, aux=aux)
    report = load_torchvision_state(fresh, state)
    assert report.assigned == len(fresh.weights)
    x = np.random.default_rng(3).normal(size=(1, 45, 37, 3)).astype("float32")
    for key in ("logits", "aux_logits"):
        np.testing.assert_allclose(fresh(x)[key], source(x)[key], rtol=1e-5, atol=1e-5)
    state["classifier.4.weight"] = state["classifier.4.weight"][:3]
    with pytest.raises(ValueError, match="shape mismatch"):
        load_torchvision_state(fresh, state)


@pytest.mark.parametrize(
    ("name", "gmacs"), [("fcn_resnet50", 152.72), ("deeplabv3_resnet50", 178.72)]
)
def test_macs_are_torchvisions_published_figures(name, gmacs):
    """torchvision's model table: GFLOPS (multiply-accumulates) at 520×520 of the COCO
    weights, which have the auxiliary head."""
    from resnetkit.models.flops import count_macs

    model = create_segmenter(name, num_classes=21, aux=True, input_shape=(520, 520, 3))
    assert count_macs(model).macs / 1e9 == pytest.approx(gmacs, abs=0.005)


def test_a_fixed_size_that_is_not_a_multiple_of_the_stride_is_padded_inside():
    model = create_segmenter("unet_resnet8_fast", num_classes=3, input_shape=(28, 30, 1))
    assert model.backbone.input_shape == (None, 32, 32, 1)  # padded to multiples of 8
    assert tuple(model(np.zeros((2, 28, 30, 1), "float32")).shape) == (2, 28, 30, 3)


def test_the_shipped_table_is_every_segmenter_as_built(capsys):
    from resnetkit.cli import main
    from resnetkit.tasks.segment.zoo import measure
    from resnetkit.zoo_table import SEGMENTATION_TABLE, SEGMENTATION_WRITE_COMMAND, shipped_table

    shipped = {e.name: e for e in shipped_table(table=SEGMENTATION_TABLE)}
    assert list(shipped) == list_segmenters()
    for name in ("unet_resnet_tiny", "fcn_resnet20", "deeplabv3plus_resnet8_fast"):
        assert measure(name) == shipped[name], f"stale table: run {SEGMENTATION_WRITE_COMMAND}"
    assert shipped["fcn_resnet50"].trainable_params == 32_957_013
    assert main(["models", "--task", "segmentation", "--family", "fpn"]) == 0
    printed = capsys.readouterr().out
    assert "fpn_resnet50" in printed and "520×520×3" in printed and "unet_" not in printed
