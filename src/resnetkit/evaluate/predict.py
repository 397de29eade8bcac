"""Class probabilities for a whole data set, with optional horizontal-flip TTA."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def predict_dataset(
    model: keras.Model, ds: tf.data.Dataset, *, tta: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, integer labels) for every example of ``(images, labels)`` batches.

    ``tta``: average the probabilities of each image and its mirror image (the same
    horizontal flip the training augmentation uses). One traced forward function serves
    every batch; labels may be integers or one-hot.
    """

    @tf.function(reduce_retracing=True)
    def forward(x):
        p = tf.cast(model(x, training=False), tf.float32)
        if tta:
            p = (p + tf.cast(model(tf.reverse(x, axis=[2]), training=False), tf.float32)) / 2
        return p

    probs, labels = [], []
    for x, y in ds:
        probs.append(forward(x).numpy())
        y = y.numpy()
        labels.append(y.argmax(-1) if y.ndim == 2 else y)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64)


def tta_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1, top-5 (with at least 6 classes) and negative log-likelihood (``nll``: plain
    cross-entropy, without the label smoothing a training loss may include)."""
    n = len(labels)
    picked = np.clip(probs[np.arange(n), labels], 1e-7, 1.0)
    out = {
        "accuracy": float(np.mean(probs.argmax(-1) == labels)),
        "nll": float(-np.mean(np.log(picked))),
    }
    if probs.shape[-1] > 5:
        top5 = np.argsort(-probs, axis=-1)[:, :5]
        out["top5_accuracy"] = float(np.mean(np.any(top5 == labels[:, None], axis=-1)))
    return out
