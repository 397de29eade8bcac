"""``Segmenter``: a segmentation head on any zoo backbone, named ``HEAD_BACKBONE``
(``deeplabv3_resnet50``, ``unet_resnet8_fast``, ...).

The backbone is a ``ResNet`` returning its named feature maps (``features=``), nested as one
layer, so classification weights load into ``segmenter.backbone`` exactly as into a
classifier. Logits come out at the input's own size for any input size: FCN and DeepLab
resize bilinearly to it (as torchvision does); DeepLabV3+ resizes the ASPP output to stage
1's size; U-Net and FPN, whose decoders add features of every stride, pad the input to a
multiple of 32 and crop the logits back.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from resnetkit.models.builder import RebuiltFromArguments, ResNet
from resnetkit.models.variants import VARIANTS, get_variant
from resnetkit.names import unknown_name_error
from resnetkit.tasks.segment import heads
from resnetkit.tasks.segment.layers import CropLike, PadToMultiple, ResizeLike


@dataclass(frozen=True)
class Head:
    """A head's defaults: the output stride it runs its backbone at, and whether it can
    dilate (decoders that join every stride cannot)."""

    output_stride: int | None
    dilates: bool
    description: str


HEADS = {
    "fcn": Head(8, True, "FCN head on the last stage (torchvision's FCNHead)"),
    "deeplabv3": Head(8, True, "ASPP on the last stage (torchvision's DeepLabHead)"),
    "deeplabv3plus": Head(16, True, "ASPP + a stage-1 decoder (48-channel projection)"),
    "unet": Head(None, False, "U-Net decoder joining every stride, down to the input's"),
    "fpn": Head(None, False, "semantic-FPN head over stages 1 to the last"),
}
ASPP_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}
UNET_CHANNELS = (256, 128, 64, 32, 16)


def split_name(architecture: str) -> tuple[str, str]:
    """``"deeplabv3plus_resnet18"`` → ``("deeplabv3plus", "resnet18")``; errors name it."""
    head, _, backbone = architecture.partition("_")
    if head not in HEADS:
        raise unknown_name_error("segmentation head", head, HEADS)
    if backbone not in VARIANTS:
        raise unknown_name_error(f"backbone of {architecture!r}", backbone, VARIANTS)
    return head, backbone


def list_segmenters(backbones: list[str] | None = None) -> list[str]:
    """Every ``HEAD_BACKBONE`` name (or those over ``backbones``)."""
    return [f"{h}_{b}" for b in (backbones or VARIANTS) for h in HEADS]


@keras.saving.register_keras_serializable(package="resnetkit")
class Segmenter(RebuiltFromArguments, keras.Model):
    """Per-pixel class logits ``[N, H, W, num_classes]`` from images ``[N, H, W, C]``.

    Args:
        architecture: ``HEAD_BACKBONE``: a head of ``HEADS`` and a zoo model.
        num_classes: output classes (21: Pascal VOC's, with the background).
        input_shape: ``(height, width, channels)``; ``None`` sizes take any size.
        output_stride: the backbone's (8, 16, 32); default: the head's (FCN and DeepLabV3 8,
            as torchvision; DeepLabV3+ 16; U-Net and FPN 32, the only one they take).
        aux: add torchvision's auxiliary FCN head on the stage before the last; the model
            then returns ``{"logits": ..., "aux_logits": ...}`` (``main_logits`` picks).
        aux_weight: the auxiliary loss's weight in training (torchvision's recipe: 0.5).
        aspp_rates: the ASPP's three dilation rates; default: by output stride (12/24/36 at
            8, 6/12/18 at 16).
        decoder_channels: U-Net's decoder widths, one per block: a block per stride below
            the deepest, and one more up to the input's size (default: the last of 256, 128,
            64, 32, 16, as segmentation_models_pytorch).
        dtype: a Keras dtype policy; the logits are float32 under mixed precision.
        preprocessing: the backbone weights' ``Preprocessing.to_dict()``, saved with the model.
    """

    TUPLES = ("input_shape", "aspp_rates", "decoder_channels")

    def __init__(
        self,
        architecture: str,
        num_classes: int = 21,
        input_shape: tuple[int | None, int | None, int] = (None, None, 3),
        output_stride: int | None = None,
        aux: bool = False,
        aux_weight: float = 0.5,
        aspp_rates: tuple[int, ...] | None = None,
        decoder_channels: tuple[int, ...] | None = None,
        dtype: str | None = None,
        preprocessing: dict | None = None,
        name: str | None = None,
        **kwargs,
    ):
        head_name, backbone_name = split_name(architecture)
        head = HEADS[head_name]
        stride = (output_stride or head.output_stride) if head.dilates else None
        stages = [f"stage{i}" for i in range(1, len(get_variant(backbone_name).depths) + 1)]

        def build_backbone(shape) -> ResNet:
            return ResNet(
                backbone_name, input_shape=shape, include_top=False,
                features=["stem", *stages], output_stride=stride, dtype=dtype,
                preprocessing=preprocessing, name=f"{backbone_name}_backbone",
            )  # fmt: skip

        backbone = build_backbone(tuple(input_shape))
        info = backbone.feature_info
        _check_stride(architecture, head_name, head, output_stride, info)
        image = keras.Input(shape=tuple(input_shape), name="image")
        multiple = 1 if head.dilates else max(i.stride for i in info.values())
        x = PadToMultiple(multiple, name="pad", dtype=dtype)(image) if multiple > 1 else image
        if tuple(x.shape[1:]) != tuple(input_shape):  # a fixed size, padded
            backbone = build_backbone(tuple(x.shape[1:]))
        features = backbone(x)
        built = max(i.stride for i in info.values())  # the deepest, as built
        rates = tuple(aspp_rates or ASPP_RATES.get(built, ASPP_RATES[32]))
        logits = _head(head_name, features, info, stages, x, num_classes, rates,
                       decoder_channels, dtype, architecture)  # fmt: skip
        logits = ResizeLike(name="logits_resize", dtype=logits.dtype)([logits, x])
        if multiple > 1:
            logits = CropLike(name="logits_crop", dtype=logits.dtype)([logits, image])
        outputs = logits
        if aux:
            if len(stages) < 2:
                raise ValueError(f"{architecture}: the auxiliary head needs two stages")
            aux_logits = heads.fcn(features[stages[-2]], num_classes, "aux", dtype=dtype)
            aux_logits = ResizeLike(name="aux_resize", dtype=aux_logits.dtype)([aux_logits, x])
            outputs = {"logits": logits, "aux_logits": aux_logits}
        super().__init__(image, outputs, name=name or architecture, **kwargs)
        self.backbone = backbone
        self.head = head_name
        self.output_stride = built
        self.aux_weight = float(aux_weight)
        self._init_config = {
            "architecture": architecture,
            "num_classes": int(num_classes),
            "input_shape": tuple(input_shape),
            "output_stride": output_stride,
            "aux": bool(aux),
            "aux_weight": float(aux_weight),
            "aspp_rates": None if aspp_rates is None else tuple(aspp_rates),
            "decoder_channels": None if decoder_channels is None else tuple(decoder_channels),
            "dtype": dtype,
            "preprocessing": None if preprocessing is None else dict(preprocessing),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """With the auxiliary head: the compiled loss on the logits plus ``aux_weight`` × the
        same loss on the auxiliary logits, so targets stay one mask (Keras would want one
        per output) and metrics stay those of the main output."""
        if not isinstance(y_pred, dict):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        total = super().compute_loss(x, y, y_pred["logits"], sample_weight, training)
        aux = keras.losses.get(self.loss)(y, y_pred["aux_logits"], sample_weight)
        return total + keras.ops.cast(self.aux_weight, total.dtype) * aux

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, main_logits(y_pred), sample_weight)


def main_logits(outputs):
    """The logits of a segmenter's outputs, with or without the auxiliary head."""
    return outputs["logits"] if isinstance(outputs, dict) else outputs


def _check_stride(architecture: str, head_name: str, head: Head, asked: int | None,
                  info: dict) -> None:  # fmt: skip
    """A stride the backbone cannot give is an error, never silently another stride."""
    built = max(i.stride for i in info.values())
    if asked is None or asked == built:
        return
    backbone = architecture.partition("_")[2]
    if not head.dilates:
        raise ValueError(
            f"{architecture}: a {head_name} decoder joins features of every stride; "
            f"output_stride must be {backbone}'s own, {built} (got {asked})"
        )
    raise ValueError(
        f"{architecture}: output_stride {asked} is above {backbone}'s deepest stride "
        f"({built}); dilation can only lower the stride: choose 8, 16 or 32 up to {built}"
    )


def _head(name, features, info, stages, x, num_classes, rates, decoder_channels, dtype,
          architecture):  # fmt: skip
    """The head ``name``'s logits over the backbone's ``features`` (``x``: the input)."""
    last = stages[-1]
    if name == "fcn":
        return heads.fcn(features[last], num_classes, dtype=dtype)
    if name == "deeplabv3":
        return heads.deeplabv3(features[last], num_classes, rates, dtype=dtype)
    if name == "deeplabv3plus":
        return heads.deeplabv3plus(
            features[last], features["stage1"], num_classes, rates, dtype=dtype
        )
    if name == "unet":
        levels = _one_per_stride(features, info)
        blocks = len(levels) - 1 + (min(i.stride for i in info.values()) > 1)
        channels = tuple(decoder_channels or UNET_CHANNELS[len(UNET_CHANNELS) - blocks :])
        if len(channels) != blocks:
            raise ValueError(
                f"{architecture}: decoder_channels needs {blocks} widths, one per "
                f"decoder block; got {list(channels)}"
            )
        return heads.unet(levels, x, num_classes, channels, dtype=dtype)
    # One level per stride of the stages, the deepest four (ImageNet: 4 to 32).
    levels = _one_per_stride(features, {n: info[n] for n in stages})[:4][::-1]
    return heads.fpn(levels, num_classes, dtype=dtype)


def _one_per_stride(features: dict, info: dict) -> list:
    """The deepest feature at each stride, from the largest stride to the smallest."""
    by_stride = {}
    for name in info:  # stem, stage1, ...: later entries are deeper
        by_stride[info[name].stride] = features[name]
    return [by_stride[s] for s in sorted(by_stride, reverse=True)]


def create_segmenter(architecture: str, **options) -> Segmenter:
    """Build the segmentation model ``architecture`` (``HEAD_BACKBONE``) with random weights;
    ``options`` are those of ``Segmenter``."""
    return Segmenter(architecture, **options)
