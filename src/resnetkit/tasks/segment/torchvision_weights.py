"""torchvision's FCN and DeepLabV3 state dicts ↔ ``Segmenter`` weights.

The backbone's keys are ``backbone.`` + torchvision's ResNet names (``weights/torch_state``);
the heads' modules map one to one onto the layers ``heads.py`` names:

    classifier.0 / .1 / .4 (FCNHead)         fcn_0_conv / fcn_0_bn / fcn_classifier
    aux_classifier.0 / .1 / .4               aux_0_conv / aux_0_bn / aux_classifier
    classifier.0.convs.0.0 / .0.1 (ASPP)     aspp_b0_conv / aspp_b0_bn
    classifier.0.convs.{1,2,3}.0 / .1        aspp_b{1,2,3}_conv / _bn (dilated 3×3)
    classifier.0.convs.4.1 / .4.2            aspp_b4_conv / aspp_b4_bn (image pooling)
    classifier.0.project.0 / .1              aspp_project_conv / aspp_project_bn
    classifier.1 / .2 / .4 (DeepLabHead)     deeplab_head_conv / deeplab_head_bn /
                                             deeplab_classifier
"""

from __future__ import annotations

import numpy as np

from resnetkit.weights.load import assign
from resnetkit.weights.torch_state import from_keras, module_map, to_keras


def _fcn(prefix: str, name: str) -> dict[str, str]:
    return {f"{prefix}.0": f"{name}_0_conv", f"{prefix}.1": f"{name}_0_bn",
            f"{prefix}.4": f"{name}_classifier"}  # fmt: skip


def segmenter_module_map(model) -> dict[str, str]:
    """torchvision module path → layer name for an ``fcn_*`` or ``deeplabv3_*`` Segmenter."""
    spec = model.backbone.variant
    names = {f"backbone.{k}": v for k, v in module_map(spec).items() if v != "head_fc"}
    if model.head == "fcn":
        names |= _fcn("classifier", "fcn")
    elif model.head == "deeplabv3":
        aspp = "classifier.0"
        for i in range(4):
            names[f"{aspp}.convs.{i}.0"] = f"aspp_b{i}_conv"
            names[f"{aspp}.convs.{i}.1"] = f"aspp_b{i}_bn"
        names[f"{aspp}.convs.4.1"], names[f"{aspp}.convs.4.2"] = "aspp_b4_conv", "aspp_b4_bn"
        names[f"{aspp}.project.0"], names[f"{aspp}.project.1"] = (
            "aspp_project_conv", "aspp_project_bn",
        )  # fmt: skip
        names |= {"classifier.1": "deeplab_head_conv", "classifier.2": "deeplab_head_bn",
                  "classifier.4": "deeplab_classifier"}  # fmt: skip
    else:
        raise ValueError(
            f"{model.name}: torchvision has state dicts for fcn_* and deeplabv3_* only"
        )
    if model.get_config()["aux"]:
        names |= _fcn("aux_classifier", "aux")
    return names


def load_torchvision_state(model, state: dict[str, np.ndarray], *, source: str = "state dict"):
    """Load a torchvision ``fcn_resnet*`` / ``deeplabv3_resnet*`` state dict into ``model``
    (every key used, every weight set, shapes checked); the ``LoadReport``."""
    arrays, unknown = to_keras(state, model.backbone.variant, segmenter_module_map(model))
    return assign(model, arrays, source=source, unknown=unknown)


def torchvision_state(model) -> dict[str, np.ndarray]:
    """``model``'s weights as a torchvision state dict."""
    return from_keras(model, segmenter_module_map(model), spec=model.backbone.variant)
