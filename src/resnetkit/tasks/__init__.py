"""Tasks: what one kind of problem adds to the task-free run engine (``training/``).

A task is a class constructed with the run's config that provides (``tasks/base.py`` ``Task``;
``docs/architecture.md``):

- data: ``load_inputs(start)`` (the data source and the input decision), ``write_targets``
  (what the run directory needs to read outputs: the class map), ``train_stream`` /
  ``eval_stream`` (tf.data batches in the loss's target form), ``class_weight``;
- the network: ``build_model(inputs, arch, weights=True)``; ``loss()``, ``metrics()`` and
  the ``monitor`` metric (higher is better) for the best checkpoint and early stopping;
- after training: ``test_metrics`` (the summary's ``test_*`` figures), ``describe_test``
  (the line printed), ``evaluate`` (``evaluation/SPLIT/``), ``data_summary``; its
  ``bad_log`` collects files that only decoding found damaged.

Classification (``tasks/classify/``) is the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base.py imports Keras; the registry of names does not need it
    from resnetkit.tasks.base import Task

TASKS = ("classification",)  # the values of the config's ``task`` key
MODEL_MODULES = ("resnetkit.models", "resnetkit.tasks.segment.model")  # register their classes


def load_model(path):
    """Any resnetkit model (a classifier or a task's model) from a ``.keras`` file or a run
    directory, in Keras' safe mode; importing each task's model module first registers its
    classes with Keras (``resnetkit.models.load_model`` knows only the backbones)."""
    import importlib

    for module in MODEL_MODULES:
        importlib.import_module(module)
    from resnetkit.models import load_model as load

    return load(path)


def get_task(config) -> Task:
    """The task object for ``config`` (its ``task`` key; classification by default)."""
    name = config.task
    if name == "classification":
        from resnetkit.tasks.classify.task import Classification

        return Classification(config)
    from resnetkit.names import unknown_name_error

    raise unknown_name_error("task", name, TASKS)
