"""Class probabilities for batches and whole data sets, with optional flip TTA."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from resnetkit.tasks.classify.metrics import nll, top_k_accuracy


def ends_in_softmax(model: keras.Model) -> bool:
    """True when the network's last layer applies softmax (resnetkit's trained runs do)."""
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


@tf.function(reduce_retracing=True)
def _forward(model, x, tta, is_probability):
    def once(images):
        out = tf.cast(model(images, training=False), tf.float32)
        return out if is_probability else tf.nn.softmax(out)

    p = once(x)
    if tta:  # the mirror image: the same horizontal flip the training augmentation uses
        p = (p + once(tf.reverse(x, axis=[2]))) / 2
    return p


def probabilities(model: keras.Model, x: tf.Tensor, *, tta: bool = False) -> np.ndarray:
    """Class probabilities of a normalized batch (softmax applied to a logits head);
    ``tta`` averages each image with its mirror image."""
    return _forward(model, x, tta, ends_in_softmax(model)).numpy()


def predict_dataset(
    model: keras.Model, ds: tf.data.Dataset, *, tta: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, integer labels) for every example of ``(images, labels)`` batches;
    labels may be integers or one-hot."""
    probs, labels = [], []
    for x, y in ds:
        probs.append(probabilities(model, x, tta=tta))
        y = y.numpy()
        labels.append(y.argmax(-1) if y.ndim == 2 else y)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64)


def tta_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1, top-5 (with at least 6 classes) and negative log-likelihood (``nll``: plain
    cross-entropy, without the label smoothing a training loss may include)."""
    out = {"accuracy": float(np.mean(probs.argmax(-1) == labels)), "nll": nll(probs, labels)}
    if probs.shape[-1] > 5:
        out["top5_accuracy"] = top_k_accuracy(probs, labels, 5)
    return out
