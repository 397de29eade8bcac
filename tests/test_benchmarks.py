"""The speed benchmark compares like with like: its hand-written PyTorch ResNet-20 computes
what resnetkit's resnet20 computes, given the same weights."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import torch  # in the dev extra

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import speed

from resnetkit.models import create_model

WEIGHTED = keras.layers.Conv2D | keras.layers.BatchNormalization | keras.layers.Dense


def _copy_weights(model: keras.Model, module) -> None:
    """Keras convolutions, BatchNorms and the classifier, in order, into the torch module."""
    keras_layers = [
        layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, WEIGHTED)
    ]
    torch_layers = [
        m
        for m in module.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d | torch.nn.Linear)
    ]
    assert len(keras_layers) == len(torch_layers) == 19 + 19 + 1
    with torch.no_grad():
        for k, t in zip(keras_layers, torch_layers, strict=True):
            w = [np.asarray(v) for v in k.weights]
            if isinstance(t, torch.nn.Conv2d):
                t.weight.copy_(torch.from_numpy(w[0].transpose(3, 2, 0, 1)))
            elif isinstance(t, torch.nn.Linear):
                t.weight.copy_(torch.from_numpy(w[0].T))
                t.bias.copy_(torch.from_numpy(w[1]))
            else:
                gamma, beta, mean, var = w
                t.weight.copy_(torch.from_numpy(gamma))
                t.bias.copy_(torch.from_numpy(beta))
                t.running_mean.copy_(torch.from_numpy(mean))
                t.running_var.copy_(torch.from_numpy(var))
                t.eps = k.epsilon


def test_pytorch_resnet20_equals_resnetkit_resnet20():
    model = create_model("resnet20", input_shape=(32, 32, 3), num_classes=10)
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers(include_self=False):  # non-trivial BN statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, n))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0, 0.1, n))
    module = speed.torch_resnet20().eval()
    ours = sum(w.size for w in map(np.asarray, model.trainable_weights))
    assert sum(p.numel() for p in module.parameters()) == ours
    _copy_weights(model, module)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    with torch.no_grad():
        got = module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
