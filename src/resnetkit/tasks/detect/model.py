"""``Detector``: RetinaNet on any zoo backbone, named ``retinanet_BACKBONE_fpn``, built as
torchvision's ``retinanet_resnet50_fpn``.

- Feature pyramid over the backbone's last three stages (ResNet-50: C3, C4, C5): a 1×1
  lateral and a 3×3 output convolution per level, top-down sums through nearest-neighbour
  upsampling to the finer level's size; P6 a 3×3 stride-2 convolution of P5, P7 of ReLU(P6).
- Two heads shared by every level: four 3×3 conv + ReLU, then the class logits
  (``A × classes``) or the box deltas (``A × 4``), with torchvision's initialisation
  (normal σ = 0.01; the class bias at a prior of 0.01).
- Outputs ``{"cls_logits": [N, anchors, classes], "bbox_regression": [N, anchors, 4]}``,
  levels P3…P7 in order, at each level row by row with a pixel's anchors together: the
  order ``anchors.anchors`` lays the anchors out in.
"""

from __future__ import annotations

import math

import keras

from resnetkit.models.builder import RebuiltFromArguments, ResNet
from resnetkit.models.layers import PaddedConv2D
from resnetkit.models.variants import VARIANTS, get_variant
from resnetkit.names import unknown_name_error
from resnetkit.tasks.detect.anchors import AnchorConfig
from resnetkit.tasks.segment.layers import ResizeLike

PYRAMID = 256
HEAD_CONVS = 4
PRIOR = 0.01  # the initial foreground probability of every anchor (Lin et al. 2017)


def backbone_of(architecture: str) -> str:
    """``"retinanet_resnet18_fpn"`` → ``"resnet18"``; errors name what is wrong."""
    if not (architecture.startswith("retinanet_") and architecture.endswith("_fpn")):
        raise ValueError(
            f"{architecture!r} is not a detector name: detectors are retinanet_BACKBONE_fpn, "
            "e.g. retinanet_resnet50_fpn"
        )
    backbone = architecture[len("retinanet_") : -len("_fpn")]
    if backbone not in VARIANTS:
        raise unknown_name_error(f"backbone of {architecture!r}", backbone, VARIANTS)
    return backbone


def list_detectors(backbones: list[str] | None = None) -> list[str]:
    """Every ``retinanet_BACKBONE_fpn`` whose backbone has three stages or more."""
    return [f"retinanet_{b}_fpn" for b in (backbones or VARIANTS)
            if len(get_variant(b).depths) >= 3]  # fmt: skip


def _fpn_init():
    # torchvision: kaiming_uniform_(a=1), i.e. uniform ±sqrt(3 / fan_in); biases 0.
    return keras.initializers.VarianceScaling(1.0, "fan_in", "uniform")


def feature_pyramid(stages: list, channels: int = PYRAMID, dtype=None) -> list:
    """P3…P7 from the last three stages' maps (finest first), as torchvision's
    ``FeaturePyramidNetwork`` with ``LastLevelP6P7(256, 256)``."""
    conv = {"kernel_initializer": _fpn_init(), "dtype": dtype}
    laterals = [keras.layers.Conv2D(channels, 1, name=f"fpn_inner{i}", **conv)(x)
                for i, x in enumerate(stages)]  # fmt: skip
    merged = [laterals[-1]]
    for i in reversed(range(len(stages) - 1)):
        up = ResizeLike("nearest", name=f"fpn_up{i}", dtype=dtype)([merged[0], laterals[i]])
        merged.insert(0, keras.layers.Add(name=f"fpn_add{i}", dtype=dtype)([laterals[i], up]))
    levels = [keras.layers.Conv2D(channels, 3, padding="same", name=f"fpn_layer{i}", **conv)(m)
              for i, m in enumerate(merged)]  # fmt: skip
    p6 = PaddedConv2D(channels, 3, strides=2, pad=1, name="fpn_p6", **conv)(levels[-1])
    relu = keras.layers.ReLU(name="fpn_p6_relu", dtype=dtype)(p6)
    p7 = PaddedConv2D(channels, 3, strides=2, pad=1, name="fpn_p7", **conv)(relu)
    return [*levels, p6, p7]


def _head(levels: list, outputs: int, per_anchor: int, name: str, bias: float, dtype) -> object:
    """One head's layers, applied to every level; ``[N, anchors, per_anchor]``."""
    init = keras.initializers.RandomNormal(stddev=0.01)
    convs = [keras.layers.Conv2D(PYRAMID, 3, padding="same", activation="relu",
                                 kernel_initializer=init, name=f"{name}_conv{i}", dtype=dtype)
             for i in range(HEAD_CONVS)]  # fmt: skip
    mixed = str(dtype).startswith("mixed_")
    last = keras.layers.Conv2D(
        outputs, 3, padding="same", kernel_initializer=init,
        bias_initializer=keras.initializers.Constant(bias), name=f"{name}_out",
        dtype="float32" if mixed else dtype,
    )  # fmt: skip
    flat = []
    for i, x in enumerate(levels):
        for conv in convs:
            x = conv(x)
        x = keras.layers.Reshape((-1, per_anchor), name=f"{name}_flat{i}", dtype=last.dtype)(
            last(x)
        )
        flat.append(x)
    return keras.layers.Concatenate(axis=1, name=name, dtype=last.dtype)(flat)


@keras.saving.register_keras_serializable(package="resnetkit")
class Detector(RebuiltFromArguments, keras.Model):
    """RetinaNet's raw outputs from images ``[N, H, W, C]`` (see the module doc).

    Args:
        architecture: ``retinanet_BACKBONE_fpn``, a zoo model of three stages or more.
        num_classes: foreground classes, scored each by its own sigmoid (91: torchvision's
            COCO indexing, background and unused ids included).
        input_shape: ``(height, width, channels)``; ``None`` sizes take any size.
        anchors: ``AnchorConfig.to_dict()``; default torchvision's (32–512, 3 scales, 3 ratios).
        dtype: a Keras dtype policy; the heads' outputs are float32 under mixed precision.
        preprocessing: the backbone weights' ``Preprocessing.to_dict()``, saved with the model.
    """

    def __init__(
        self,
        architecture: str,
        num_classes: int = 91,
        input_shape: tuple[int | None, int | None, int] = (None, None, 3),
        anchors: dict | None = None,
        dtype: str | None = None,
        preprocessing: dict | None = None,
        name: str | None = None,
        **kwargs,
    ):
        backbone_name = backbone_of(architecture)
        depth = len(get_variant(backbone_name).depths)
        if depth < 3:
            raise ValueError(f"{architecture}: the feature pyramid needs three stages; "
                             f"{backbone_name} has {depth}")  # fmt: skip
        stages = [f"stage{i}" for i in range(depth - 2, depth + 1)]
        anchor_config = AnchorConfig.from_dict(anchors)
        per_location = anchor_config.per_location
        backbone = ResNet(
            backbone_name, input_shape=tuple(input_shape), include_top=False, features=stages,
            dtype=dtype, preprocessing=preprocessing, name=f"{backbone_name}_backbone",
        )  # fmt: skip
        image = keras.Input(shape=tuple(input_shape), name="image")
        features = backbone(image)
        levels = feature_pyramid([features[s] for s in stages], dtype=dtype)
        if len(levels) != len(anchor_config.sizes):
            raise ValueError(f"anchors: {len(anchor_config.sizes)} levels of sizes for "
                             f"{len(levels)} pyramid levels")  # fmt: skip
        prior = -math.log((1 - PRIOR) / PRIOR)
        outputs = {
            "cls_logits": _head(levels, per_location * num_classes, num_classes, "cls",
                                prior, dtype),
            "bbox_regression": _head(levels, per_location * 4, 4, "box", 0.0, dtype),
        }  # fmt: skip
        super().__init__(image, outputs, name=name or architecture, **kwargs)
        self.backbone = backbone
        self.anchor_config = anchor_config
        self.level_names = [*(f"fpn_layer{i}" for i in range(3)), "fpn_p6", "fpn_p7"]
        self._init_config = {
            "architecture": architecture,
            "num_classes": int(num_classes),
            "input_shape": tuple(input_shape),
            "anchors": anchor_config.to_dict(),
            "dtype": dtype,
            "preprocessing": None if preprocessing is None else dict(preprocessing),
        }


def create_detector(architecture: str, **options) -> Detector:
    """Build the detector ``architecture`` with random weights; ``options`` are those of
    ``Detector``."""
    return Detector(architecture, **options)
