"""``Detector``: RetinaNet on any zoo backbone, named ``retinanet_BACKBONE_fpn``, built as
torchvision's ``retinanet_resnet50_fpn``.

- Feature pyramid over the backbone's last three stages of stride 8 or more (ResNet-50:
  C3, C4, C5): a 1×1 lateral and a 3×3 output convolution per level, top-down sums through
  nearest-neighbour upsampling to the finer level's size; P6 a 3×3 stride-2 convolution of
  P5, P7 of ReLU(P6). A small-image backbone whose stages end at stride 8 (``resnet8_fast``)
  gives its stages of stride ≥ 8 and more such convolutions up to five levels: finer levels
  would multiply the heads' cost (4 × 256-channel convolutions per level) for no gain.
- Two heads shared by every level: four 3×3 conv + ReLU, then the class logits
  (``A × classes``) or the box deltas (``A × 4``); the output layers initialised as
  torchvision's (normal σ = 0.01; the class bias at a prior of 0.01), the hidden ones
  He-normal unless ``head_init="torchvision"`` (σ = 0.01: see ``_head``).
- Outputs ``{"cls_logits": [N, anchors, classes], "bbox_regression": [N, anchors, 4]}``,
  levels P3…P7 in order, at each level row by row with a pixel's anchors together: the
  order ``anchors.anchors`` lays the anchors out in.
"""

from __future__ import annotations

import math

import keras

from resnetkit.models.builder import RebuiltFromArguments, ResNet
from resnetkit.models.layers import PaddedConv2D
from resnetkit.models.stems import STEM_STRIDES
from resnetkit.models.variants import VARIANTS, get_variant
from resnetkit.names import unknown_name_error
from resnetkit.tasks.detect.anchors import AnchorConfig
from resnetkit.tasks.detect.metrics import AnchorF1
from resnetkit.tasks.segment.layers import ResizeLike

PYRAMID = 256
HEAD_CONVS = 4
PRIOR = 0.01  # the initial foreground probability of every anchor (Lin et al. 2017)
HEAD_INITS = ("he", "torchvision")


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


MIN_STRIDE = 8  # P3's stride, as torchvision's
LEVELS = 5


def pyramid_stages(backbone: str) -> list[str]:
    """The backbone stages the pyramid starts from: the last three of stride ≥ 8 (the
    deepest one always)."""
    variant = get_variant(backbone)
    stride, strides = STEM_STRIDES[variant.stem], []
    for s in variant.stage_strides:
        stride *= s
        strides.append(stride)
    picked = [f"stage{i + 1}" for i, s in enumerate(strides) if s >= MIN_STRIDE]
    return picked[-3:] or [f"stage{len(strides)}"]


def list_detectors(backbones: list[str] | None = None) -> list[str]:
    """Every ``retinanet_BACKBONE_fpn`` whose backbone has three stages or more."""
    return [f"retinanet_{b}_fpn" for b in (backbones or VARIANTS)
            if len(get_variant(b).depths) >= 3]  # fmt: skip


def _fpn_init():
    # torchvision: kaiming_uniform_(a=1), i.e. uniform ±sqrt(3 / fan_in); biases 0.
    return keras.initializers.VarianceScaling(1.0, "fan_in", "uniform")


def extra_level_names(stages: int) -> list[str]:
    """The stride-2 levels above the stages' (``fpn_p6``, ``fpn_p7`` after three stages)."""
    return [f"fpn_p{3 + i}" for i in range(stages, LEVELS)]


def feature_pyramid(stages: list, channels: int = PYRAMID, dtype=None) -> list:
    """Five levels from the stages' maps (finest first), as torchvision's
    ``FeaturePyramidNetwork`` with ``LastLevelP6P7(256, 256)`` after three stages."""
    conv = {"kernel_initializer": _fpn_init(), "dtype": dtype}
    laterals = [keras.layers.Conv2D(channels, 1, name=f"fpn_inner{i}", **conv)(x)
                for i, x in enumerate(stages)]  # fmt: skip
    merged = [laterals[-1]]
    for i in reversed(range(len(stages) - 1)):
        up = ResizeLike("nearest", name=f"fpn_up{i}", dtype=dtype)([merged[0], laterals[i]])
        merged.insert(0, keras.layers.Add(name=f"fpn_add{i}", dtype=dtype)([laterals[i], up]))
    levels = [keras.layers.Conv2D(channels, 3, padding="same", name=f"fpn_layer{i}", **conv)(m)
              for i, m in enumerate(merged)]  # fmt: skip
    x, previous = levels[-1], None
    for name in extra_level_names(len(stages)):
        if previous is not None:  # P7 from ReLU(P6), as torchvision's LastLevelP6P7
            x = keras.layers.ReLU(name=f"{previous}_relu", dtype=dtype)(x)
        x = PaddedConv2D(channels, 3, strides=2, pad=1, name=name, **conv)(x)
        levels.append(x)
        previous = name
    return levels


def _head(levels: list, outputs: int, per_anchor: int, name: str, bias: float, dtype,
          channels: int = PYRAMID, init: str = "he") -> object:  # fmt: skip
    """One head's layers, applied to every level; ``[N, anchors, per_anchor]``.

    ``init`` "torchvision": every convolution normal with σ 0.01, torchvision's. Four such
    layers shrink the signal by about 0.24 each at 128 channels, so the logits hardly depend
    on the image and a network trained from scratch stays at the prior; "he" (the default)
    gives the four hidden convolutions He-normal weights, which keep the signal's scale,
    and keeps torchvision's σ 0.01 and prior bias on the output layer."""
    small = keras.initializers.RandomNormal(stddev=0.01)
    hidden = keras.initializers.HeNormal() if init == "he" else small
    convs = [keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                                 kernel_initializer=hidden, name=f"{name}_conv{i}", dtype=dtype)
             for i in range(HEAD_CONVS)]  # fmt: skip
    mixed = str(dtype).startswith("mixed_")
    last = keras.layers.Conv2D(
        outputs, 3, padding="same", kernel_initializer=small,
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
        channels: the pyramid's and the heads' width (torchvision's 256).
        dtype: a Keras dtype policy; the heads' outputs are float32 under mixed precision.
        preprocessing: the backbone weights' ``Preprocessing.to_dict()``, saved with the model.
        head_init: the heads' hidden convolutions, "he" or "torchvision" (see ``_head``).
    """

    def __init__(
        self,
        architecture: str,
        num_classes: int = 91,
        input_shape: tuple[int | None, int | None, int] = (None, None, 3),
        anchors: dict | None = None,
        channels: int = PYRAMID,
        dtype: str | None = None,
        preprocessing: dict | None = None,
        head_init: str = "he",
        name: str | None = None,
        **kwargs,
    ):
        if head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}; got "
                             f"{head_init!r}")  # fmt: skip
        backbone_name = backbone_of(architecture)
        depth = len(get_variant(backbone_name).depths)
        if depth < 3:
            raise ValueError(f"{architecture}: the feature pyramid needs three stages; "
                             f"{backbone_name} has {depth}")  # fmt: skip
        stages = pyramid_stages(backbone_name)
        anchor_config = AnchorConfig.from_dict(anchors)
        per_location = anchor_config.per_location
        backbone = ResNet(
            backbone_name, input_shape=tuple(input_shape), include_top=False, features=stages,
            dtype=dtype, preprocessing=preprocessing, name=f"{backbone_name}_backbone",
        )  # fmt: skip
        image = keras.Input(shape=tuple(input_shape), name="image")
        features = backbone(image)
        levels = feature_pyramid([features[s] for s in stages], channels, dtype=dtype)
        if len(levels) != len(anchor_config.sizes):
            raise ValueError(f"anchors: {len(anchor_config.sizes)} levels of sizes for "
                             f"{len(levels)} pyramid levels")  # fmt: skip
        prior = -math.log((1 - PRIOR) / PRIOR)
        outputs = {
            "cls_logits": _head(levels, per_location * num_classes, num_classes, "cls",
                                prior, dtype, channels, head_init),
            "bbox_regression": _head(levels, per_location * 4, 4, "box", 0.0, dtype, channels,
                                     head_init),
        }  # fmt: skip
        super().__init__(image, outputs, name=name or architecture, **kwargs)
        self.backbone = backbone
        self.anchor_config = anchor_config
        self.level_names = [*(f"fpn_layer{i}" for i in range(len(stages))),
                            *extra_level_names(len(stages))]  # fmt: skip
        self._init_config = {
            "architecture": architecture,
            "num_classes": int(num_classes),
            "input_shape": tuple(input_shape),
            "anchors": anchor_config.to_dict(),
            "channels": int(channels),
            "dtype": dtype,
            "preprocessing": None if preprocessing is None else dict(preprocessing),
            "head_init": head_init,
        }
        self.anchor_f1 = AnchorF1()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled ``RetinaNetLoss`` of the target and output dicts (Keras would want
        one loss per output), plus any regularization losses."""
        total = self.loss(y, y_pred)
        if self.losses:
            total = total + keras.ops.sum(self.losses)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.anchor_f1.update_state(y, y_pred)
        return self.get_metrics_result()


def create_detector(architecture: str, **options) -> Detector:
    """Build the detector ``architecture`` with random weights; ``options`` are those of
    ``Detector``."""
    return Detector(architecture, **options)
