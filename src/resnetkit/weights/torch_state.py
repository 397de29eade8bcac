"""PyTorch state dicts (torchvision and timm key names) ↔ resnetkit weights.

The module names are derived from the variant row, not listed per model:

    torchvision / timm ResNet        resnetkit
    conv1, bn1                       stem_conv, stem_bn
    conv1.0/.1/.3/.4/.6, bn1         stem_conv1, stem_bn1, stem_conv2, stem_bn2, stem_conv3,
                                     stem_bn3 (timm's deep stem)
    layer{s}.{b-1}.conv{i} / .bn{i}  stage{s}_block{b}_conv{i} / _bn{i}
    layer{s}.{b-1}.downsample.0/.1   stage{s}_block{b}_shortcut_conv / _shortcut_bn
        (ResNet-D: .1/.2, .0 is the average pool)
    fc                               head_fc

    timm ResNetV2 (pre-activation)
    stem.conv                        stem_conv
    stages.{s-1}.blocks.{b-1}.norm{i} / .conv{i} / .downsample.conv
    norm, head.fc (a 1×1 conv)       final_bn, head_fc

Tensors: conv OIHW → HWIO (``transpose(2, 3, 1, 0)``, grouped convs included), linear
weights transposed, BN weight/bias/running_mean/running_var → gamma/beta/moving_mean/
moving_variance; ``num_batches_tracked`` is skipped on import and written as 0 on export.
"""

from __future__ import annotations

import numpy as np

from resnetkit.models.variants import Variant

_BN_TO_KERAS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_BN_FROM_KERAS = {v: k for k, v in _BN_TO_KERAS.items()}


def module_map(spec: Variant) -> dict[str, str]:
    """PyTorch module path → Keras layer name for a torchvision/timm-layout variant."""
    if spec.layout != "torch":
        raise ValueError(
            f"{spec.name!r} uses the {spec.layout!r} layout; PyTorch state dicts load into the "
            "torchvision/timm-layout models (e.g. 'resnet50', not 'resnet50_keras')"
        )
    convs = 3 if spec.block == "bottleneck" else 2
    names: dict[str, str] = {}
    if spec.preact:
        names["stem.conv"] = "stem_conv"
        for t, k in _blocks(spec, "stages.{s0}.blocks.{b0}"):
            for i in range(1, convs + 1):
                names[f"{t}.norm{i}"] = f"{k}_bn{i}"
                names[f"{t}.conv{i}"] = f"{k}_conv{i}"
            names[f"{t}.downsample.conv"] = f"{k}_shortcut_conv"
        names["norm"] = "final_bn"
        names["head.fc"] = "head_fc"
        return names

    if spec.stem == "deep":
        for i, (conv, bn) in enumerate([("conv1.0", "conv1.1"), ("conv1.3", "conv1.4")], 1):
            names[conv], names[bn] = f"stem_conv{i}", f"stem_bn{i}"
        names["conv1.6"], names["bn1"] = "stem_conv3", "stem_bn3"
    else:
        names["conv1"], names["bn1"] = "stem_conv", "stem_bn"
    first = 1 if spec.shortcut == "D" else 0
    for t, k in _blocks(spec, "layer{s}.{b0}"):
        for i in range(1, convs + 1):
            names[f"{t}.conv{i}"] = f"{k}_conv{i}"
            names[f"{t}.bn{i}"] = f"{k}_bn{i}"
        names[f"{t}.downsample.{first}"] = f"{k}_shortcut_conv"
        names[f"{t}.downsample.{first + 1}"] = f"{k}_shortcut_bn"
    names["fc"] = "head_fc"
    return names


def _blocks(spec: Variant, pattern: str):
    for s, depth in enumerate(spec.depths, 1):
        for b in range(1, depth + 1):
            yield pattern.format(s=s, s0=s - 1, b0=b - 1), f"stage{s}_block{b}"


def to_keras(
    state: dict[str, np.ndarray], spec: Variant, names: dict[str, str] | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Translate a state dict to ``{"layer/weight": array}``; also return unknown keys.
    ``names``: module path → layer name (default: the variant's ``module_map``; a task's
    model passes its own, backbone and head)."""
    names = module_map(spec) if names is None else names
    bn_modules = {k.rsplit(".", 1)[0] for k in state if k.endswith(".running_mean")}
    arrays: dict[str, np.ndarray] = {}
    unknown: list[str] = []
    for key, value in state.items():
        module, param = key.rsplit(".", 1) if "." in key else ("", key)
        if param == "num_batches_tracked" and module in bn_modules:
            continue  # a training counter, not a weight
        layer = names.get(module)
        if layer is None:
            unknown.append(key)
            continue
        value = np.asarray(value)
        if module in bn_modules:
            if param not in _BN_TO_KERAS:
                unknown.append(key)
                continue
            arrays[f"{layer}/{_BN_TO_KERAS[param]}"] = value
        elif param == "weight" and value.ndim == 4 and layer == "head_fc":
            arrays[f"{layer}/kernel"] = value[:, :, 0, 0].T  # timm's 1×1-conv classifier
        elif param == "weight" and value.ndim == 4:
            arrays[f"{layer}/kernel"] = value.transpose(2, 3, 1, 0)
        elif param == "weight" and value.ndim == 2:
            arrays[f"{layer}/kernel"] = value.T
        elif param == "bias":
            arrays[f"{layer}/bias"] = value
        else:
            unknown.append(key)
    return arrays, unknown


def from_keras(
    model, names: dict[str, str] | None = None, spec: Variant | None = None
) -> dict[str, np.ndarray]:
    """``model``'s weights as a state dict with the source framework's key names
    (``names`` as in ``to_keras``; by default those of ``spec``, ``model.variant``)."""
    spec = spec or model.variant
    layer_to_module = {v: k for k, v in (names or module_map(spec)).items()}
    state: dict[str, np.ndarray] = {}
    for w in model.weights:
        layer, leaf = w.path.rsplit("/", 1)
        module = layer_to_module.get(layer)
        if module is None:
            raise ValueError(f"{w.path}: no PyTorch counterpart in the {spec.name} layout")
        value = np.asarray(w.numpy(), dtype=np.float32)
        if leaf in _BN_FROM_KERAS:
            state[f"{module}.{_BN_FROM_KERAS[leaf]}"] = value
            if leaf == "moving_variance":
                state[f"{module}.num_batches_tracked"] = np.array(0, dtype=np.int64)
        elif leaf == "kernel" and value.ndim == 4:
            state[f"{module}.weight"] = np.ascontiguousarray(value.transpose(3, 2, 0, 1))
        elif leaf == "kernel" and spec.preact:  # timm ResNetV2's classifier is a 1×1 conv
            state[f"{module}.weight"] = np.ascontiguousarray(value.T[:, :, None, None])
        elif leaf == "kernel":
            state[f"{module}.weight"] = np.ascontiguousarray(value.T)
        else:
            state[f"{module}.{leaf}"] = value
    return state
