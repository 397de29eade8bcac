"""Interop tier: resnetkit against torchvision and timm themselves.

Run with ``make test-interop`` (it installs PyTorch 2.14.1, torchvision 0.29.1 and timm 1.0.31
into ``.venv-interop``). Each test prints the measured errors.
"""

import numpy as np
import pytest
from helpers import fill_weights, images
from safetensors.numpy import save_file

from resnetkit.weights import create_model, torch_state_dict

pytestmark = pytest.mark.interop

TORCHVISION = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]
TIMM = ["resnet18d", "resnet50d", "resnetv2_50"]
SIZES = [(224, 224), (193, 161)]  # an odd size catches padding mistakes


def source_model(name: str):
    import timm
    import torch
    import torchvision

    torch.manual_seed(0)
    model = timm.create_model(name) if name in TIMM else getattr(torchvision.models, name)()
    return with_bn_statistics(model)


def with_bn_statistics(model):
    """``model`` in eval mode with non-trivial BatchNorm statistics and affine parameters:
    defaults (0, 1) would hide a wrong mapping of running_mean/var or weight/bias."""
    import torch

    g = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.25)
            module.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()


def errors(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    rel = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
    return rel, float(np.max(np.abs(ours - theirs)))


@pytest.mark.parametrize("name", TORCHVISION + TIMM)
def test_pytorch_weights_give_pytorch_logits(name, tmp_path):
    import torch

    torch.set_num_threads(2)
    source = source_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(source.state_dict(), path)
    for h, w in SIZES:
        model = create_model(name, input_shape=(h, w, 3), weights=path)
        x = images((2, h, w, 3))
        rel, worst = errors(model(x).numpy(), torch_logits(source, x))
        print(f"\n{name} {h}x{w}: relative L2 error {rel:.2e}, max abs {worst:.2e}")
        assert rel <= 1e-4


@pytest.mark.parametrize(
    "name", ["resnet18", "resnet50", "resnext50_32x4d", "resnet50d", "resnetv2_50"]
)
def test_exported_state_dict_loads_strictly_in_pytorch(name, tmp_path):
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    model = create_model(name, input_shape=(224, 224, 3))
    fill_weights(model)
    path = tmp_path / f"{name}.safetensors"
    save_file(torch_state_dict(model), path)
    target = source_model(name)
    target.load_state_dict(load_file(path), strict=True)
    x = images((2, 224, 224, 3))
    rel, worst = errors(model(x).numpy(), torch_logits(target, x))
    print(f"\n{name} exported: relative L2 error {rel:.2e}, max abs {worst:.2e}")
    assert rel <= 1e-4


@pytest.mark.parametrize("aux", [False, True])
@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50"])
def test_torchvision_segmentation_state_dicts_give_its_logits(name, aux):
    import torch
    import torchvision

    from resnetkit.tasks.segment.model import create_segmenter
    from resnetkit.tasks.segment.torchvision_weights import load_torchvision_state

    torch.set_num_threads(2)
    torch.manual_seed(0)
    build = getattr(torchvision.models.segmentation, name)
    theirs = with_bn_statistics(
        build(weights=None, weights_backbone=None, num_classes=21, aux_loss=aux)
    )
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    ours = create_segmenter(name, num_classes=21, aux=aux)
    load_torchvision_state(ours, state, source=name)
    for h, w in SIZES:
        x = images((1, h, w, 3))
        with torch.no_grad():
            expected = theirs(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
        got = ours(x)
        pairs = [("out", got["logits"] if aux else got)]
        if aux:
            pairs.append(("aux", got["aux_logits"]))
        for key, mine in pairs:
            rel, worst = errors(np.asarray(mine), expected[key].permute(0, 2, 3, 1).numpy())
            print(f"\n{name} aux={aux} {key} {h}x{w}: relative L2 {rel:.2e}, max abs {worst:.2e}")
            assert rel <= 1e-4


def test_torchvision_retinanet_state_dict_gives_its_head_outputs():
    import torch
    import torchvision

    from resnetkit.tasks.detect.model import create_detector
    from resnetkit.tasks.detect.torchvision_weights import load_torchvision_state

    torch.set_num_threads(2)
    torch.manual_seed(0)
    theirs = with_bn_statistics(
        torchvision.models.detection.retinanet_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=91
        )
    )
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    ours = create_detector("retinanet_resnet50_fpn")
    load_torchvision_state(ours, state, source="retinanet_resnet50_fpn")
    for h, w in [(512, 512), (481, 353)]:
        x = images((1, h, w, 3))
        with torch.no_grad():  # the raw heads, past torchvision's resize and normalization
            features = list(theirs.backbone(torch.from_numpy(x).permute(0, 3, 1, 2)).values())
            expected = theirs.head(features)
        got = ours(x)
        for key in ("cls_logits", "bbox_regression"):
            rel, worst = errors(np.asarray(got[key]), expected[key].numpy())
            print(f"\nretinanet {key} {h}x{w}: relative L2 {rel:.2e}, max abs {worst:.2e}")
            assert rel <= 1e-4


def test_torchvision_retinanet_anchors_and_final_boxes_are_ours():
    import torch
    import torchvision
    from torchvision.models.detection.image_list import ImageList

    from resnetkit.tasks.detect.anchors import anchors
    from resnetkit.tasks.detect.decode import inference_model
    from resnetkit.tasks.detect.model import create_detector
    from resnetkit.tasks.detect.torchvision_weights import load_torchvision_state

    torch.set_num_threads(2)
    torch.manual_seed(1)
    theirs = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91
    ).eval()
    with torch.no_grad():  # scores spread around the 0.05 threshold, so that NMS has work
        theirs.head.classification_head.cls_logits.bias.normal_(-3.0, 1.0)
        theirs.head.regression_head.bbox_reg.weight.mul_(20)
    ours = create_detector("retinanet_resnet50_fpn")
    load_torchvision_state(ours, {k: v.numpy() for k, v in theirs.state_dict().items()})
    h, w = 481, 353
    x = images((1, h, w, 3))
    with torch.no_grad():
        batch = torch.from_numpy(x).permute(0, 3, 1, 2)
        features = list(theirs.backbone(batch).values())
        head = theirs.head(features)
        their_anchors = theirs.anchor_generator(ImageList(batch, [(h, w)]), features)
        per_level = [f.shape[2] * f.shape[3] * 9 for f in features]
        split = {k: list(v.split(per_level, dim=1)) for k, v in head.items()}
        (expected,) = theirs.postprocess_detections(
            split, [list(a.split(per_level)) for a in their_anchors], [(h, w)]
        )
    grids = [(f.shape[2], f.shape[3]) for f in features]
    np.testing.assert_array_equal(anchors(ours.anchor_config, (h, w), grids), their_anchors[0])
    got = inference_model(ours)(x)
    n = int(got["count"][0])
    print(f"\nretinanet final detections: ours {n}, torchvision {len(expected['boxes'])}")
    assert n == len(expected["boxes"]) > 10
    mine = {k: np.asarray(got[k][0, :n]) for k in ("scores", "classes", "boxes")}
    order = np.argsort(-mine["scores"], kind="stable")
    np.testing.assert_allclose(mine["scores"][order], expected["scores"], atol=1e-4)
    np.testing.assert_array_equal(mine["classes"][order], expected["labels"])
    worst = float(np.abs(mine["boxes"][order] - expected["boxes"].numpy()).max())
    print(f"retinanet final boxes: max abs difference {worst:.2e} px")
    np.testing.assert_allclose(mine["boxes"][order], expected["boxes"], atol=1e-2)


def test_torchvision_retinanet_matching_and_loss_are_ours():
    import tensorflow as tf
    import torch
    import torchvision
    from torchvision.models.detection.image_list import ImageList

    from resnetkit.tasks.detect.anchors import AnchorConfig, anchors
    from resnetkit.tasks.detect.losses import retinanet_loss
    from resnetkit.tasks.detect.targets import encode_targets, match

    torch.manual_seed(2)
    theirs = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91
    ).eval()
    h = w = 256
    batch = torch.from_numpy(images((2, h, w, 3))).permute(0, 3, 1, 2)
    truth = [
        {"boxes": torch.tensor([[10.0, 20, 90, 120], [100, 100, 230, 250], [30, 30, 50, 44]]),
         "labels": torch.tensor([3, 17, 3])},
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)},
    ]  # fmt: skip
    with torch.no_grad():
        features = list(theirs.backbone(batch).values())
        head = theirs.head(features)
        their_anchors = theirs.anchor_generator(ImageList(batch, [(h, w)] * 2), features)
        expected = theirs.compute_loss(truth, head, their_anchors)
        their_match = theirs.proposal_matcher(
            torchvision.ops.box_iou(truth[0]["boxes"], their_anchors[0])
        )
    grid = anchors(AnchorConfig(), (h, w), [(f.shape[2], f.shape[3]) for f in features])
    grid = tf.constant(grid)
    ours = match(tf.constant(truth[0]["boxes"].numpy()), grid)
    np.testing.assert_array_equal(ours.numpy(), their_match.numpy())
    per_image = [encode_targets(tf.constant(t["boxes"].numpy()), tf.constant(t["labels"].numpy()),
                                grid) for t in truth]  # fmt: skip
    targets = {k: tf.stack([t[k] for t in per_image]) for k in ("classes", "boxes")}
    outputs = {k: tf.constant(v.numpy()) for k, v in head.items()}
    _, parts = retinanet_loss(targets, outputs, grid)
    mine = [float(parts["classification"]), float(parts["box"])]
    reference = [float(expected["classification"]), float(expected["bbox_regression"])]
    print(f"\nretinanet loss (classification, box): ours {mine}, torchvision {reference}")
    np.testing.assert_allclose(
        float(parts["classification"]), expected["classification"], rtol=1e-4
    )
    np.testing.assert_allclose(float(parts["box"]), expected["bbox_regression"], rtol=1e-4)
