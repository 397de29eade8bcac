"""The network as it is deployed: float32 everywhere, BatchNorm folded into convolutions.

At inference a BatchNorm that directly follows a convolution is a fixed per-channel affine
map, so it can be merged into that convolution's kernel and bias:

    s = gamma / sqrt(moving_variance + epsilon)
    kernel' = kernel * s            (per output channel)
    bias'   = (bias - moving_mean) * s + beta

which removes one full pass over every feature map. BatchNorms that follow something else
(pre-activation blocks: an addition or a ReLU) stay as they are. The model is rebuilt with
``keras.models.clone_model``: every layer from its own config with a float32 dtype policy
(ONNX export needs float32; a run trained in mixed precision keeps its float32 weights); the
folded BatchNorms drop out of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from resnetkit.models.layers import PaddedConv2D


@dataclass(frozen=True)
class FoldReport:
    """Which BatchNorm layers were folded into which convolutions, and which were kept."""

    folded: dict[str, str]  # BatchNorm layer name -> convolution layer name
    kept: list[str]  # BatchNorm layers that do not directly follow a convolution


def foldable_pairs(model: keras.Model) -> tuple[dict[str, str], list[str]]:
    """(BatchNorm name → the Conv2D it follows, other BatchNorm names) for a functional model.

    A pair folds only if the convolution is linear, channels-last, called once, and its output
    feeds nothing but that BatchNorm, and the BatchNorm normalizes the last axis.
    """
    pairs, kept = {}, []
    outputs = {id(t) for t in model.outputs}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        conv = _producer(layer)
        ok = (
            isinstance(conv, keras.layers.Conv2D)
            # not a subclass with other semantics (padding inside the convolution is fine)
            and type(conv) in (keras.layers.Conv2D, PaddedConv2D)
            and conv.data_format == "channels_last"
            and conv.activation in (None, keras.activations.linear)
            and len(conv._inbound_nodes) == 1
            and len(conv._outbound_nodes) == 1
            and id(conv._inbound_nodes[0].output_tensors[0]) not in outputs
            and len(layer._inbound_nodes) == 1
            and layer.axis in (-1, 3)
        )
        if ok:
            pairs[layer.name] = conv.name
        else:
            kept.append(layer.name)
    return pairs, kept


def _producer(layer: keras.layers.Layer):
    """The layer whose output is ``layer``'s only input, or ``None``."""
    if len(layer._inbound_nodes) != 1:
        return None
    tensors = layer._inbound_nodes[0].input_tensors
    if len(tensors) != 1:
        return None
    return tensors[0]._keras_history.operation


def fold_batchnorm(kernel, bias, gamma, beta, mean, variance, epsilon: float):
    """The kernel and bias of a convolution followed by an inference-mode BatchNorm.

    ``kernel`` is (kh, kw, in, out); ``bias``, ``gamma`` or ``beta`` may be ``None``
    (absent). Computed in float64 so that folding adds no rounding of its own.
    """
    kernel = np.asarray(kernel, np.float64)
    out = kernel.shape[-1]
    bias = np.zeros(out) if bias is None else np.asarray(bias, np.float64)
    gamma = np.ones(out) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(out) if beta is None else np.asarray(beta, np.float64)
    scale = gamma / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    new_kernel = kernel * scale
    new_bias = (bias - np.asarray(mean, np.float64)) * scale + beta
    return new_kernel.astype(np.float32), new_bias.astype(np.float32)


def inference_model(model: keras.Model, *, fold: bool = True) -> tuple[keras.Model, FoldReport]:
    """A float32 copy of a functional ``model`` for deployment, BatchNorm folded if ``fold``.

    The copy shares no variables with ``model``; its layers keep their names. A nested
    functional model (a segmenter's backbone) is copied and folded the same way; its layers
    are reported as ``NESTED/LAYER``.
    """
    if not _is_functional(model):
        raise ValueError(f"expected a functional Keras model; got {type(model).__name__}")
    pairs, kept = foldable_pairs(model) if fold else ({}, [])
    if not fold:
        kept = [la.name for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    convs = set(pairs.values())
    nested: dict[str, FoldReport] = {}

    def clone(layer):
        if layer.name in pairs:
            return layer  # never called: see ``call``
        if _is_functional(layer):  # a nested network (a segmenter's backbone): its own copy
            copy, nested[layer.name] = inference_model(layer, fold=fold)
            return copy
        config = {**layer.get_config(), "dtype": "float32"}
        if layer.name in convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        # A folded BatchNorm passes the (already normalized) convolution output through.
        return args[0] if layer.name in pairs else layer(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    bn_of = {conv: bn for bn, conv in pairs.items()}
    for layer in model.layers:
        if (
            layer.name in pairs
            or layer.name in nested
            or isinstance(layer, keras.layers.InputLayer)
        ):
            continue
        target = copy.get_layer(layer.name)
        if layer.name in bn_of:
            bn = model.get_layer(bn_of[layer.name])
            kernel, bias = fold_batchnorm(
                layer.kernel.numpy(),
                layer.bias.numpy() if layer.use_bias else None,
                bn.gamma.numpy() if bn.scale else None,
                bn.beta.numpy() if bn.center else None,
                bn.moving_mean.numpy(),
                bn.moving_variance.numpy(),
                bn.epsilon,
            )
            target.set_weights([kernel, bias])
        else:
            target.set_weights([np.asarray(w, np.float32) for w in layer.get_weights()])
    for name, report in nested.items():
        pairs.update({f"{name}/{bn}": f"{name}/{conv}" for bn, conv in report.folded.items()})
        kept += [f"{name}/{bn}" for bn in report.kept]
    return copy, FoldReport(pairs, kept)


def _is_functional(layer) -> bool:
    return isinstance(layer, keras.Model) and hasattr(layer, "_run_through_graph")
