"""One functional builder for every ResNet: ``ResNet(variant, **options)``.

A ``Variant`` row (variants.py) fixes the architecture; the options below fix what a user
changes between uses of the same architecture. The model is a functional ``keras.Model``
subclass whose ``get_config`` holds exactly its constructor arguments, so a ``.keras`` file
rebuilds it through this code and reloads with ``safe_mode=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from dataclasses import dataclass

import keras

from resnetkit.models.blocks import SHORTCUTS, branch_convs, dilate, residual_block
from resnetkit.models.layout import LAYOUTS, LayerFactory
from resnetkit.models.stems import apply_stem
from resnetkit.models.variants import Variant, get_variant
from resnetkit.names import unknown_name_error

POOLINGS = ("avg", "max", None)
OUTPUT_STRIDES = (8, 16, 32, None)
ACTIVATIONS = (None, "linear", "softmax", "sigmoid")


@dataclass(frozen=True)
class FeatureInfo:
    """A named feature map: the layer that produces it, its stride (input pixels per
    feature pixel), its channels, and the dilation of its stage's last convolutions."""

    layer: str
    stride: int
    channels: int
    dilation: int = 1


LOAD_WITH = "resnetkit.load_model(path), which registers every resnetkit model class with Keras"


class RebuiltFromArguments:
    """``get_config``/``from_config`` for a task's functional model that is rebuilt from its
    constructor's arguments (``self._init_config``); ``TUPLES``: the arguments whose JSON
    lists become tuples again."""

    TUPLES: tuple[str, ...] = ("input_shape",)

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, **self._init_config,
                "load_with": LOAD_WITH}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        config.pop("load_with", None)
        for key in cls.TUPLES:
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        trainable = config.pop("trainable", True)
        model = cls(**config)
        model.trainable = trainable
        return model


@keras.saving.register_keras_serializable(package="resnetkit")
class ResNet(keras.Model):
    """A ResNet built from a zoo variant.

    Args:
        variant: a name from ``resnetkit.list_models()``.
        num_classes: classifier outputs (default: the variant's, 10 or 1000).
        input_shape: ``(height, width, channels)``; any size from the variant's minimum up,
            any channel count. ``None`` height/width accept any size at run time.
        include_top: end with global pooling and the classifier; otherwise with features.
        pooling: ``"avg"`` or ``"max"`` global pooling; ``None`` (default) means ``"avg"``
            with the top and no pooling (a 4-D feature map) without it.
        classifier_activation: ``None`` for logits (default) or ``"softmax"``/``"sigmoid"``.
        zero_init_residual: start every block as an identity (last BN gamma = 0; last conv
            kernel = 0 in pre-activation blocks) — Goyal et al. 2017.
        drop_path_rate: stochastic depth; block ``i`` of ``n`` drops its branch with
            probability ``drop_path_rate × i / (n - 1)`` (Huang et al. 2016, linear rule).
        shortcut: override the variant's shortcut (``"A"``, ``"B"``, ``"D"``).
        post_add_relu: override whether a ReLU follows the addition (the seed omits it).
        features: return these named feature maps (``feature_info``'s names) as a dict
            instead of the top: the backbone of a segmentation or detection model.
        output_stride: 8, 16 or 32 for a dense-prediction backbone: every stride that would
            take the features past it becomes a dilation instead (torchvision's
            ``replace_stride_with_dilation``: the block that loses its stride keeps the
            previous dilation, the blocks after it use the new one). No weight changes shape,
            so classification weights load unchanged. ``None``: the network as published.
        dtype: a Keras dtype policy such as ``"mixed_bfloat16"``; the classifier stays float32.
        preprocessing: the input preprocessing the weights expect, as
            ``Preprocessing.to_dict()``; set by ``create_model(..., weights=...)`` and saved
            with the model so that every later step applies it.
    """

    def __init__(
        self,
        variant: str,
        num_classes: int | None = None,
        input_shape: tuple[int | None, int | None, int] | None = None,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | None = None,
        zero_init_residual: bool = False,
        drop_path_rate: float = 0.0,
        shortcut: str | None = None,
        post_add_relu: bool | None = None,
        features: list[str] | tuple[str, ...] | None = None,
        output_stride: int | None = None,
        dtype: str | keras.DTypePolicy | None = None,
        preprocessing: dict | None = None,
        name: str | None = None,
        **kwargs,
    ):
        spec = get_variant(variant)
        num_classes = spec.num_classes if num_classes is None else num_classes
        input_shape = _check_input_shape(spec, input_shape)
        spec = _apply_overrides(spec, shortcut=shortcut, post_add_relu=post_add_relu)
        _check_options(spec, num_classes, include_top, pooling, classifier_activation)
        if output_stride not in OUTPUT_STRIDES or isinstance(output_stride, bool):
            raise ValueError(f"output_stride must be 8, 16, 32 or None; got {output_stride!r}")
        drop_path_rate = _check_rate(drop_path_rate)
        if spec.shortcut == "none" and (zero_init_residual or drop_path_rate):
            raise ValueError(
                f"{variant!r} has no shortcuts, so zero_init_residual and drop_path_rate "
                "would cut the signal path; leave them off for plain networks"
            )
        if isinstance(dtype, keras.DTypePolicy):
            dtype = dtype.name

        inputs = keras.Input(shape=input_shape, name="image")
        if features is not None and (include_top or pooling is not None):
            raise ValueError("features= returns feature maps: set include_top=False, no pooling")
        outputs, feature_info, tensors = _build(
            spec,
            inputs,
            make=LayerFactory(LAYOUTS[spec.layout], dtype),
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            zero_init_residual=zero_init_residual,
            drop_path_rate=drop_path_rate,
            output_stride=output_stride,
        )
        # Keras walks the layer graph recursively; ResNet-1202 has ~4,000 layers in a chain.
        if features is not None:
            for n in features:
                if n not in tensors:
                    raise unknown_name_error("feature", n, tensors)
            outputs = {n: tensors[n] for n in features}
        with _recursion_limit(20 * sum(spec.depths) + 1000):
            super().__init__(inputs, outputs, name=name or variant, **kwargs)
        self.variant = spec
        self.feature_info = feature_info
        self._init_config = {
            "variant": variant,
            "num_classes": int(num_classes),
            "input_shape": tuple(input_shape),
            "include_top": bool(include_top),
            "pooling": pooling,
            "classifier_activation": classifier_activation,
            "zero_init_residual": bool(zero_init_residual),
            "drop_path_rate": drop_path_rate,
            "shortcut": shortcut,
            "post_add_relu": post_add_relu,
            "features": None if features is None else list(features),
            "output_stride": output_stride,
            "dtype": dtype,
            "preprocessing": None if preprocessing is None else dict(preprocessing),
        }

    def get_config(self) -> dict:
        # ``load_with`` is not an argument: it rides in the saved config so that Keras' own
        # "Could not locate class 'ResNet'" error, which prints the config, says what to call.
        return {
            "name": self.name,
            "trainable": self.trainable,
            **self._init_config,
            "load_with": LOAD_WITH,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> ResNet:
        config = dict(config)
        config.pop("load_with", None)
        if config.get("input_shape") is not None:
            config["input_shape"] = tuple(config["input_shape"])
        trainable = config.pop("trainable", True)
        model = cls(**config)
        model.trainable = trainable
        return model

    @property
    def preprocessing(self):
        """The ``Preprocessing`` its weights expect, or ``None`` (weights not pretrained)."""
        from resnetkit.preprocessing import Preprocessing

        spec = self._init_config["preprocessing"]
        return None if spec is None else Preprocessing.from_dict(spec)

    def feature_extractor(self, names: list[str] | None = None) -> keras.Model:
        """A model sharing this one's layers that returns ``{name: feature map}``."""
        names = list(self.feature_info) if names is None else list(names)
        for n in names:
            if n not in self.feature_info:
                raise unknown_name_error("feature", n, self.feature_info)
        outputs = {n: self.get_layer(self.feature_info[n].layer).output for n in names}
        return keras.Model(self.input, outputs, name=f"{self.name}_features")


def _build(
    spec: Variant,
    inputs,
    *,
    make: LayerFactory,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    zero_init_residual: bool,
    drop_path_rate: float,
    output_stride: int | None = None,
):
    layout = make.layout
    x, stem_feature, stem_stride, stride = apply_stem(
        inputs, spec.stem, spec.stem_width, make, preact=spec.preact
    )
    features = {"stem": _feature(stem_feature, stem_stride)}
    tensors = {"stem": stem_feature}

    total_blocks = sum(spec.depths)
    index, dilation = 0, 1
    stage_strides = spec.stage_strides
    if layout.stride_in_last_block:
        # Keras V2 downsamples at the end of a stage instead of the start of the next one.
        stage_strides = (*stage_strides[1:], 1)
    for s, (depth, planes, stage_stride) in enumerate(
        zip(spec.depths, spec.widths, stage_strides, strict=True), start=1
    ):
        out_channels = planes * spec.expansion
        width = int(planes * spec.width_per_group / 64) * spec.groups
        for b in range(1, depth + 1):
            strided = b == depth if layout.stride_in_last_block else b == 1
            block_stride = stage_stride if strided else 1
            convs = branch_convs(
                spec.block,
                width,
                out_channels,
                block_stride,
                groups=spec.groups,
                stride_in_1x1=layout.stride_in_1x1,
            )
            if output_stride is not None and stride * block_stride > output_stride:
                convs = dilate(convs, dilation, dilation * block_stride)
                dilation, block_stride = dilation * block_stride, 1
            elif dilation > 1:
                convs = dilate(convs, dilation, dilation)
            stride *= block_stride
            x = residual_block(
                x,
                convs,
                make,
                lambda role, s=s, b=b: layout.block(role, s, b),
                shortcut=spec.shortcut,
                preact=spec.preact,
                post_add_relu=spec.post_add_relu,
                drop_path_rate=drop_path_rate * index / max(total_blocks - 1, 1),
                zero_init_last=zero_init_residual,
            )
            index += 1
        features[f"stage{s}"] = _feature(x, stride, dilation)
        tensors[f"stage{s}"] = x

    if spec.preact:
        x = make.relu(make.bn(x, name=layout.top("final_bn")), name=layout.top("final_relu"))
        features[f"stage{len(spec.depths)}"] = _feature(x, stride, dilation)
        tensors[f"stage{len(spec.depths)}"] = x

    if include_top or pooling is not None:
        kind = pooling or "avg"
        pool_cls = keras.layers.GlobalAveragePooling2D
        if kind == "max":
            pool_cls = keras.layers.GlobalMaxPooling2D
        x = pool_cls(name=layout.top(f"head_{kind}_pool"), dtype=make.dtype)(x)
    if include_top:
        # The classifier computes in float32 under mixed precision: stable logits and losses.
        mixed = str(make.dtype).startswith("mixed_")
        x = keras.layers.Dense(
            num_classes,
            activation=classifier_activation,
            name=layout.top("head_fc"),
            dtype="float32" if mixed else make.dtype,
        )(x)
    return x, features, tensors


@contextlib.contextmanager
def _recursion_limit(limit: int):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _feature(tensor, stride: int, dilation: int = 1) -> FeatureInfo:
    name = tensor._keras_history.operation.name
    return FeatureInfo(name, stride, int(tensor.shape[-1]), dilation)


def _check_input_shape(spec: Variant, input_shape) -> tuple:
    if input_shape is None:
        return (spec.input_size, spec.input_size, 3)
    shape = tuple(input_shape)
    ok = len(shape) == 3 and all(d is None or (isinstance(d, int) and d > 0) for d in shape)
    if not ok or shape[2] is None:
        raise ValueError(
            f"input_shape must be (height, width, channels) with positive integers "
            f"(height/width may be None); got {input_shape!r}"
        )
    small = [d for d in shape[:2] if d is not None and d < spec.min_input_size]
    if small:
        raise ValueError(
            f"input_shape {shape} is too small for {spec.name!r}: height and width must be at "
            f"least {spec.min_input_size} (resize or pad the images)"
        )
    return shape


def _apply_overrides(spec: Variant, *, shortcut, post_add_relu) -> Variant:
    changes = {}
    if shortcut is not None and shortcut != spec.shortcut:
        if shortcut not in SHORTCUTS[:3]:
            raise ValueError(f"shortcut must be one of 'A', 'B', 'D'; got {shortcut!r}")
        if spec.shortcut == "none" or spec.family == "keras":
            raise ValueError(
                f"{spec.name!r} has a fixed shortcut layout ({spec.shortcut!r}); "
                f"shortcut={shortcut!r} cannot be applied"
            )
        changes["shortcut"] = shortcut
    if post_add_relu is not None and post_add_relu != spec.post_add_relu:
        if spec.preact or spec.family == "keras":
            raise ValueError(
                f"post_add_relu cannot be changed for {spec.name!r} "
                "(pre-activation blocks and keras.applications layouts fix it)"
            )
        changes["post_add_relu"] = bool(post_add_relu)
    return dataclasses.replace(spec, **changes) if changes else spec


def _check_options(spec, num_classes, include_top, pooling, classifier_activation) -> None:
    if include_top and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be 'avg', 'max' or None; got {pooling!r}")
    if classifier_activation not in ACTIVATIONS:
        raise ValueError(
            f"classifier_activation must be None (logits), 'softmax' or 'sigmoid'; "
            f"got {classifier_activation!r}"
        )


def _check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"drop_path_rate must be a number in [0, 1); got {rate!r}")
    return float(rate)
