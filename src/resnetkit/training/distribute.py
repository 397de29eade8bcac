"""tf.distribute strategies by name: ``auto``, ``one``, ``mirrored``, ``multiworker``.

``multiworker`` reads the cluster from ``TF_CONFIG`` (one JSON per process, as TensorFlow
documents); worker 0 is the chief and the only one that writes the run directory. It is
refused for now: Keras 3.15's ``fit`` fails under MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "one", "mirrored", "multiworker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"run.strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "run.strategy=multiworker needs TF_CONFIG (the cluster and this worker's task); "
                "see the README's 'Training on several machines'"
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e
        # Measured here: Keras 3.15's fit() fails under MultiWorkerMirroredStrategy (its
        # symbolic build reduces an input batch across workers; its metric reduction asks
        # for axis 0 of a scalar). Refuse clearly rather than crash after start-up.
        raise ValueError(
            "run.strategy=multiworker is not supported with Keras "
            f"{keras.__version__}: its fit() fails under MultiWorkerMirroredStrategy; "
            "use one machine (auto/one/mirrored)"
        )
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "one":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.get_strategy()  # the default: one device, no wrapping


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
