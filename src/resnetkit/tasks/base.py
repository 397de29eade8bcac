"""``Task``: what the run engine asks of one kind of problem, and nothing more.

The engine (``training/engine.py``) builds one task object per run from the config
(``get_task``) and calls only these. A new task (segmentation, detection) is a class with
these members in its own ``tasks/NAME/`` folder; the engine does not change.
"""

from __future__ import annotations

from typing import Any, Protocol

import keras
import tensorflow as tf

from resnetkit.rundir import RunDir


class Task(Protocol):
    """One kind of problem on a ResNet backbone (``tasks/classify/task.py``: the first)."""

    name: str  # the config's ``task`` value, recorded in the summary
    monitor: str  # the validation metric (higher is better) for best checkpoints and patience
    bad_log: Any  # data.pipeline.BadImageLog: files that only decoding found damaged
    config: Any  # the run's Config; the engine sets the resolved one once defaults are decided

    # Data: the source, the input decision, the target streams.
    def load_inputs(self, start: Any = None) -> Any: ...

    def write_targets(self, run: RunDir, inputs: Any) -> None: ...

    def augmentation(self, inputs: Any) -> tuple[Any, str]:
        """The config's ``augment`` with what it leaves open decided for these inputs, and
        a line saying what and why."""
        ...

    def train_stream(
        self,
        inputs: Any,
        batch_size: int,
        *,
        first_epoch: int = 0,
        epochs: int = 1,
        skip: int = 0,
        images: Any = None,
    ) -> tf.data.Dataset: ...

    def eval_stream(self, inputs: Any, split: Any, batch_size: int) -> tf.data.Dataset: ...

    def class_weight(self, inputs: Any) -> dict | None: ...

    # The network and what it is trained against.
    def build_model(self, inputs: Any, arch: str, *, weights: bool = True) -> keras.Model: ...

    def loss(self) -> keras.losses.Loss: ...

    def metrics(self) -> list: ...

    # After training: the summary's test figures, the line printed, evaluation/SPLIT/.
    def test_metrics(self, model: keras.Model, inputs: Any, batch_size: int) -> dict: ...

    def describe_test(self, test: dict) -> str | None: ...

    def evaluate(self, model: keras.Model, inputs: Any, run: RunDir, batch_size: int) -> str | None:
        """Write ``evaluation/SPLIT/``; the line to print of what it measured, if any."""
        ...

    def data_summary(self, inputs: Any, bad_files: int) -> dict: ...
