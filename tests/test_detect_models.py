"""RetinaNet as torchvision builds it: exact parameter count, anchors, box coding, and
the state-dict key map (the interop tier compares outputs with torchvision itself)."""

from __future__ import annotations

import numpy as np
import pytest

from resnetkit.tasks.detect import boxes
from resnetkit.tasks.detect.anchors import AnchorConfig, anchors
from resnetkit.tasks.detect.model import backbone_of, create_detector, list_detectors


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_retinanet_resnet50_fpn_has_torchvisions_exact_parameter_count():
    # torchvision 0.29.1 at 91 classes, BatchNorm trainable (its published 34,014,999
    # counts the backbone's FrozenBatchNorm2d affine parameters as buffers).
    import keras

    model = create_detector("retinanet_resnet50_fpn")
    assert _trainable(model) == 34_068_119
    affine = sum(_trainable(layer) for layer in model.backbone.layers
                 if isinstance(layer, keras.layers.BatchNormalization))  # fmt: skip
    assert _trainable(model) - affine == 34_014_999


def test_an_odd_size_gives_one_output_row_per_anchor():
    model = create_detector("retinanet_resnet18_fpn", num_classes=5)
    out = model(np.zeros((1, 481, 353, 3), "float32"))
    # torchvision's level sizes for 481×353: 61×45, 31×23, 16×12, 8×6, 4×3.
    grids = [(61, 45), (31, 23), (16, 12), (8, 6), (4, 3)]
    count = len(anchors(AnchorConfig(), (481, 353), grids))
    assert count == 9 * sum(h * w for h, w in grids) == 33_390
    assert out["cls_logits"].shape == (1, count, 5)
    assert out["bbox_regression"].shape == (1, count, 4)
    # The class bias starts every anchor at a foreground probability of 0.01.
    probability = 1 / (1 + np.exp(-model.get_layer("cls_out").bias.numpy()))
    np.testing.assert_allclose(probability, 0.01, rtol=1e-5)


def test_anchors_are_torchvisions():
    config = AnchorConfig()
    assert config.sizes[0] == (32, 40, 50) and config.sizes[-1] == (512, 645, 812)
    base = config.base(0)
    assert base.shape == (9, 4)
    # Ratio 0.5 (h/w) at size 32: w = 32 / sqrt(0.5) = 45.25, h = 22.63, halves rounded.
    np.testing.assert_array_equal(base[0], [-23, -11, 23, 11])
    np.testing.assert_array_equal(base[3], [-16, -16, 16, 16])  # ratio 1, size 32
    grid = anchors(config, (64, 64), [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)])
    # Level 0 pixel (row 0, column 1): shifted by the stride 8 in x only.
    np.testing.assert_array_equal(grid[9 + 3], [8 - 16, -16, 8 + 16, 16])
    with pytest.raises(ValueError, match="2 pyramid levels but 5 anchor sizes"):
        anchors(config, (64, 64), [(8, 8), (4, 4)])


def test_box_coding_round_trips_and_iou_is_exact():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (50, 2))
    anchor = np.concatenate([xy, xy + rng.uniform(8, 100, (50, 2))], axis=1)
    xy = rng.uniform(0, 200, (50, 2))
    box = np.concatenate([xy, xy + rng.uniform(4, 300, (50, 2))], axis=1)
    np.testing.assert_allclose(boxes.decode(boxes.encode(box, anchor), anchor), box, atol=1e-6)
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(boxes.iou(a, b), [[50 / 150, 0, 1]])


def test_torchvision_key_map_covers_every_weight():
    from resnetkit.tasks.detect.torchvision_weights import torchvision_state

    model = create_detector("retinanet_resnet18_fpn", num_classes=7)
    state = torchvision_state(model)
    assert state["head.classification_head.cls_logits.weight"].shape == (63, 256, 3, 3)
    assert state["backbone.fpn.inner_blocks.0.0.weight"].shape == (256, 128, 1, 1)
    assert "backbone.body.layer4.1.bn2.running_var" in state
    assert not any(k.startswith("backbone.body.fc") for k in state)


def test_names_and_the_list():
    assert backbone_of("retinanet_resnet8_fast_fpn") == "resnet8_fast"
    with pytest.raises(ValueError, match="retinanet_BACKBONE_fpn"):
        backbone_of("retina_resnet50")
    with pytest.raises(ValueError, match="backbone of 'retinanet_resnet51_fpn'"):
        backbone_of("retinanet_resnet51_fpn")
    names = list_detectors()
    assert "retinanet_resnet50_fpn" in names and "retinanet_resnet_tiny_fpn" not in names


def test_decoding_thresholds_clips_and_suppresses_per_class():
    from resnetkit.tasks.detect.decode import DecodeDetections

    # One level of 4×4 pixels at stride 8, one 16-pixel anchor per pixel, two classes.
    layer = DecodeDetections({"sizes": [[16]], "ratios": [1.0]}, detections=5)
    logits = np.full((1, 16, 2), -10.0, np.float32)
    deltas = np.zeros((1, 16, 4), np.float32)
    logits[0, 5, 0] = 3.0  # anchor (8, 8) ± 8
    logits[0, 6, 0] = 2.0  # anchor (16, 8) ± 8, moved 4 px left: IoU 0.6 with the first
    deltas[0, 6, 0] = -0.25
    logits[0, 6, 1] = 1.0  # the same box as another class: kept
    logits[0, 0, 1] = 0.5  # anchor (0, 0) ± 8: clipped to the image
    logits[0, 1, 0] = -3.5  # sigmoid 0.03, below the 0.05 threshold
    out = layer([np.zeros((1, 32, 32, 3), np.float32), logits, deltas,
                 np.zeros((1, 4, 4, 8), np.float32)])  # fmt: skip
    assert int(out["count"][0]) == 3
    sigmoid = 1 / (1 + np.exp(-np.array([3.0, 1.0, 0.5])))
    np.testing.assert_allclose(out["scores"][0, :3], sigmoid, rtol=1e-6)
    np.testing.assert_array_equal(out["classes"][0], [0, 1, 1, -1, -1])
    np.testing.assert_allclose(out["boxes"][0, :3], [[0, 0, 16, 16], [4, 0, 20, 16],
                                                     [0, 0, 8, 8]], atol=1e-5)  # fmt: skip
    assert not np.asarray(out["boxes"][0, 3:]).any()


def test_the_inference_model_returns_padded_detections_and_reloads(tmp_path):
    import subprocess
    import sys

    from resnetkit.tasks.detect.decode import inference_model

    detector = create_detector("retinanet_resnet8_fast_fpn", num_classes=3)
    model = inference_model(detector, detections=20, score_threshold=0.0)
    x = np.random.default_rng(0).normal(size=(2, 70, 50, 3)).astype("float32")
    out = model(x)
    assert out["boxes"].shape == (2, 20, 4) and out["count"].shape == (2,)
    assert np.all(np.asarray(out["count"]) == 20)  # threshold 0: every slot is filled
    boxes = np.asarray(out["boxes"])
    assert boxes.min() >= 0 and boxes[..., 2].max() <= 50 and boxes[..., 3].max() <= 70
    model.save(tmp_path / "d.keras")  # the detector and its decoding, in a fresh process
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "boxes.npy", boxes)
    code = (
        "import numpy as np, resnetkit, sys; d = sys.argv[1];"
        "m = resnetkit.load_model(d + '/d.keras');"
        "b = np.asarray(m(np.load(d + '/x.npy'))['boxes']);"
        "np.testing.assert_allclose(b, np.load(d + '/boxes.npy'), atol=1e-4);"
        "print(type(m.get_layer('decode')).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["DecodeDetections"]


def test_the_shipped_table_is_every_detector_as_built(capsys):
    from resnetkit.cli import main
    from resnetkit.tasks.detect.zoo import measure
    from resnetkit.zoo_table import DETECTION_TABLE, DETECTION_WRITE_COMMAND, shipped_table

    shipped = {e.name: e for e in shipped_table(table=DETECTION_TABLE)}
    assert list(shipped) == list_detectors()
    for name in ("retinanet_resnet8_fast_fpn", "retinanet_resnet18_fpn"):
        assert measure(name) == shipped[name], f"stale table: run {DETECTION_WRITE_COMMAND}"
    assert shipped["retinanet_resnet50_fpn"].trainable_params == 34_068_119
    assert main(["models", "--task", "detection"]) == 0
    printed = capsys.readouterr().out
    assert "retinanet_resnet50_fpn" in printed and "512×512×3" in printed
    assert "retinanet_resnet8_fast_fpn" in printed and "128×128×3" in printed


def test_decoding_a_batch_keeps_each_images_own_best_and_suppresses_within_it():
    from resnetkit.tasks.detect.decode import DecodeDetections

    layer = DecodeDetections({"sizes": [[16]], "ratios": [1.0]}, detections=3)
    logits = np.full((3, 16, 2), -10.0, np.float32)
    logits[0, 5, 0] = 1.0  # image 0: one box, weaker than every box of image 1
    # image 1: the same box as image 0's (not suppressed by it, nor it by this one), and
    # four more, each at IoU ≤ 1/3 with the others: the best three of five are kept
    logits[1, [5, 15, 6, 10, 0], 0] = [5.0, 6.0, 4.5, 4.0, 2.0]
    # image 2: nothing above the threshold
    out = layer([np.zeros((3, 32, 32, 3), np.float32), logits, np.zeros((3, 16, 4), np.float32),
                 np.zeros((3, 4, 4, 8), np.float32)])  # fmt: skip
    np.testing.assert_array_equal(out["count"], [1, 3, 0])
    sigmoid = 1 / (1 + np.exp(-np.array([6.0, 5.0, 4.5])))
    np.testing.assert_allclose(out["scores"][1], sigmoid, rtol=1e-6)
    np.testing.assert_allclose(out["boxes"][0, 0], [0, 0, 16, 16], atol=1e-5)
    np.testing.assert_allclose(out["boxes"][1, 0], [16, 16, 32, 32], atol=1e-5)
    np.testing.assert_array_equal(out["classes"], [[0, -1, -1], [0, 0, 0], [-1, -1, -1]])
    assert not np.asarray(out["boxes"][2]).any() and not np.asarray(out["scores"][2]).any()


def test_parity_excuses_what_the_per_image_cap_cuts_and_nothing_else():
    from resnetkit.export.detection import Matching

    def rows(boxes, scores):
        return (np.array(boxes, np.float32), np.array(scores, np.float32), np.zeros(len(scores)))

    kept = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    a = rows(kept, [0.9, 0.5, 0.20001])
    # Near-equal last scores: the other runtime kept another box at the cap of three.
    b = rows([*kept[:2], [60, 60, 70, 70]], [0.9, 0.5, 0.20003])
    options = {"threshold": 0.05, "tolerance": 1e-4, "min_iou": 0.99}
    m = Matching()
    m.add(a, b, keep=3, **options)
    assert (m.matched, m.borderline, m.unmatched) == (2, 2, 0)
    uncapped = Matching()
    uncapped.add(a, b, **options)
    assert uncapped.unmatched == 2
    # Below the cap a missing detection is a failure, whatever its score.
    short = Matching()
    short.add(a, rows(kept[:2], [0.9, 0.5]), keep=4, **options)
    assert short.unmatched == 1


def test_he_initialised_heads_let_the_image_reach_the_logits_and_torchvisions_is_there():
    x = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype("float32")
    spread = {}
    for init in ("he", "torchvision"):
        m = create_detector("retinanet_resnet8_fast_fpn", num_classes=3, head_init=init)
        spread[init] = float(np.std(np.asarray(m(x)["cls_logits"])))
        hidden = m.get_layer("cls_conv0").kernel.numpy()
        fan_in = np.prod(hidden.shape[:3])
        want = np.sqrt(2 / fan_in) if init == "he" else 0.01
        assert abs(hidden.std() / want - 1) < 0.1, init
        assert abs(m.get_layer("cls_out").kernel.numpy().std() / 0.01 - 1) < 0.1
        assert m.get_config()["head_init"] == init
    # σ 0.01 in all five layers leaves logits that barely vary: a scratch run stays at the prior.
    assert spread["he"] > 20 * spread["torchvision"]
    with pytest.raises(ValueError, match="head_init must be one of he, torchvision"):
        create_detector("retinanet_resnet8_fast_fpn", head_init="xavier")


def test_parity_matches_equal_boxes_clipped_to_zero_area():
    from resnetkit.export.detection import Matching

    edge = (np.array([[64, 10, 64, 20]], np.float32), np.array([0.6], np.float32), np.zeros(1))
    m = Matching()
    m.add(edge, tuple(a.copy() for a in edge), threshold=0.05, tolerance=1e-4, min_iou=0.99)
    assert (m.matched, m.unmatched) == (1, 0)
    moved = (edge[0] + [0, 5, 0, 5], edge[1], edge[2])
    m = Matching()
    m.add(edge, moved, threshold=0.05, tolerance=1e-4, min_iou=0.99)
    assert m.unmatched == 2
