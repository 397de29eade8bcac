"""tf.distribute strategies by name: ``auto``, ``one``, ``mirrored``, ``multiworker``.

``multiworker`` reads the cluster from ``TF_CONFIG`` (one JSON per process, as TensorFlow
documents); worker 0 is the chief and the only one that writes the run directory.

Keras 3's ``fit`` has two faults under MultiWorkerMirroredStrategy (tensorflow#72388), both
worked around here and nowhere else: it reduces each scalar log over ``axis=0`` (an error), and
it builds a strategy-scoped model from an input batch reduced across workers (an error). The
first is fixed by averaging scalar logs across workers; the second by ``unscoped_build``.
"""

from __future__ import annotations

import json
import os
from typing import get_args

import tensorflow as tf

from resnetkit.training.config import Strategy

STRATEGIES = get_args(Strategy)


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
        _patch_keras_multi_worker_logs()
        return tf.distribute.MultiWorkerMirroredStrategy()
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


def _patch_keras_multi_worker_logs() -> None:
    """Average scalar logs across workers instead of Keras' failing ``axis=0`` reduction."""
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "_resnetkit", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or reduction not in (
            "auto",
            "mean",
        ):
            return original(values, strategy, reduction)

        def mean(v):
            if isinstance(v, tf.distribute.DistributedValues):
                return strategy.reduce("MEAN", v, axis=None)
            return v

        return tf.nest.map_structure(mean, values)

    reduce_per_replica._resnetkit = True
    trainer.reduce_per_replica = reduce_per_replica


def unscoped_build(model, strategy: tf.distribute.Strategy) -> None:
    """Let a multi-worker model build while ``fit`` traces, inside ``strategy.scope()``.

    Keras' eager symbolic build reduces an input batch across workers and fails; without a
    recorded strategy, ``fit`` takes the one of the enclosing scope instead.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        model._distribute_strategy = None
