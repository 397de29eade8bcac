"""torchvision's RetinaNet state dicts ↔ ``Detector`` weights.

backbone.body.*                              the backbone (``weights/torch_state``)
backbone.fpn.inner_blocks.{i}.0              fpn_inner{i} (1×1 laterals, C3…C5)
backbone.fpn.layer_blocks.{i}.0              fpn_layer{i} (3×3 outputs, P3…P5)
backbone.fpn.extra_blocks.p6 / .p7           fpn_p6 / fpn_p7
head.classification_head.conv.{i}.0          cls_conv{i}
head.classification_head.cls_logits          cls_out
head.regression_head.conv.{i}.0              box_conv{i}
head.regression_head.bbox_reg                box_out
"""

from __future__ import annotations

import numpy as np

from resnetkit.tasks.detect.model import HEAD_CONVS
from resnetkit.weights.load import assign
from resnetkit.weights.torch_state import from_keras, module_map, to_keras


def detector_module_map(model) -> dict[str, str]:
    """torchvision module path → layer name for a ``retinanet_*_fpn`` Detector."""
    spec = model.backbone.variant
    names = {f"backbone.body.{k}": v for k, v in module_map(spec).items() if v != "head_fc"}
    for i in range(3):
        names[f"backbone.fpn.inner_blocks.{i}.0"] = f"fpn_inner{i}"
        names[f"backbone.fpn.layer_blocks.{i}.0"] = f"fpn_layer{i}"
    names["backbone.fpn.extra_blocks.p6"] = "fpn_p6"
    names["backbone.fpn.extra_blocks.p7"] = "fpn_p7"
    for head, ours, last in (("classification_head", "cls", "cls_logits"),
                             ("regression_head", "box", "bbox_reg")):  # fmt: skip
        for i in range(HEAD_CONVS):
            names[f"head.{head}.conv.{i}.0"] = f"{ours}_conv{i}"
        names[f"head.{head}.{last}"] = f"{ours}_out"
    return names


def load_torchvision_state(model, state: dict[str, np.ndarray], *, source: str = "state dict"):
    """Load a torchvision ``retinanet_resnet*_fpn`` state dict into ``model`` (every key
    used, every weight set, shapes checked); the ``LoadReport``."""
    arrays, unknown = to_keras(state, model.backbone.variant, detector_module_map(model))
    return assign(model, arrays, source=source, unknown=unknown)


def torchvision_state(model) -> dict[str, np.ndarray]:
    """``model``'s weights as a torchvision state dict."""
    return from_keras(model, detector_module_map(model), spec=model.backbone.variant)
