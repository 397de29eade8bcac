"""The benchmarks measure what they claim: the speed benchmark's hand-written PyTorch ResNet-20
computes what resnetkit's resnet20 computes, given the same weights, and the Fashion-MNIST
benchmark counts every segment of a resumed seed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
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


def test_fashion_mnist_benchmark_resumes_a_dead_seed_and_sums_its_segments(tmp_path, monkeypatch):
    """A seed whose process died is resumed, and its wall time counts each segment."""
    import fashion_mnist

    run_dir = tmp_path / "seed0"
    state = run_dir / "checkpoints" / "epoch-0003" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    os.utime(state, (1_000.0 + 600, 1_000.0 + 600))  # last checkpoint 600 s after the start
    log = fashion_mnist._segment_log(run_dir)
    log.write_text(json.dumps([{"started": 1_000.0, "resumed": False}]))  # never closed
    commands = []

    def finish_run(command, **kwargs):
        commands.append(command)
        (run_dir / "summary.json").write_text(
            json.dumps({"test_accuracy": 0.9, "train_seconds": 1.0, "images_per_second": 2.0})
        )
        (run_dir / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1.0}\n')
        (run_dir / "config.yaml").write_text("run: {precision: float32}\n")
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(fashion_mnist.subprocess, "run", finish_run)
    run = fashion_mnist.one_run(Path("unused.yaml"), 0, run_dir)
    assert commands[0][-2:] == ["--resume", str(run_dir)]
    assert run["segments"][0] == {"seconds": 600.0, "closed_at": "last checkpoint (process died)"}
    assert run["segments"][1]["closed_at"] == "process exit"
    assert run["wall_seconds"] == 600.0 + run["segments"][1]["seconds"]
    assert len(json.loads(log.read_text())) == 2
    with pytest.raises(SystemExit, match="holds a finished run"):  # not reported twice
        fashion_mnist.one_run(Path("unused.yaml"), 0, run_dir)
    (run_dir / "summary.json").unlink()
    (run_dir / "checkpoints" / "epoch-0003" / "state.json").unlink()
    (run_dir / "checkpoints" / "epoch-0003").rmdir()
    with pytest.raises(SystemExit, match="holds no checkpoint to resume"):
        fashion_mnist.one_run(Path("unused.yaml"), 0, run_dir)
