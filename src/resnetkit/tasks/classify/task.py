"""``Classification``: the classification task as the run engine sees it (tasks/base.py).

Labels are integer class indices, one-hot when MixUp, CutMix or label smoothing needs soft
targets; the head is the ResNet's own pooling + dense classifier; the loss is cross-entropy;
the evaluation is ``tasks/classify/evaluation.py``'s.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data import save_class_map
from resnetkit.data.augment import Augment
from resnetkit.data.pipeline import BadImageLog, build_dataset
from resnetkit.data.sources import ImageSet
from resnetkit.rundir import RunDir
from resnetkit.tasks.classify.inputs import Inputs, Start, resolve_inputs
from resnetkit.weights import REGISTRY
from resnetkit.weights import create_model as create_pretrained


class Classification:
    """One instance per run; ``config`` is the run's resolved ``Config``."""

    name = "classification"
    monitor = "val_accuracy"  # higher is better: the best checkpoint and early stopping

    def __init__(self, config):
        self.config = config
        c = config
        self.one_hot = bool(c.augment.mixup or c.augment.cutmix or c.optim.label_smoothing)
        self.bad_log = BadImageLog()

    # Data ---------------------------------------------------------------------------------

    def load_inputs(self, start: Start | None = None) -> Inputs:
        inputs = resolve_inputs(self.config, start, REGISTRY)
        self.num_classes = self.config.model.num_classes or inputs.source.num_classes
        return inputs

    def augmentation(self, inputs: Inputs) -> tuple[Augment, str]:
        """``augment.crop="auto"`` and unset sizes decided by the images (data/augment.py)."""
        return self.config.augment.resolved(inputs.input_shape[0], inputs.image_side)

    def write_targets(self, run: RunDir, inputs: Inputs) -> None:
        """What the run directory must hold to read its outputs: the class map."""
        save_class_map(run.class_map, inputs.source.class_names)

    def train_stream(
        self,
        inputs: Inputs,
        batch_size: int,
        *,
        first_epoch: int = 0,
        epochs: int = 1,
        skip: int = 0,
        images: ImageSet | None = None,
    ) -> tf.data.Dataset:
        """The training split (or ``images`` of it, cached in memory: the budget probe's
        sample) as a stream of shuffled, augmented batches (see build_dataset)."""
        c = self.config
        ds = build_dataset(
            inputs.source.splits["train"] if images is None else images,
            inputs.prep,
            channels=inputs.channels,
            batch_size=batch_size,
            bad_log=self.bad_log,
            max_pixels=c.data.max_pixels,
            training=True,
            augment=c.augment,
            num_classes=inputs.source.num_classes,
            seed=c.run.seed,
            cache=c.data.cache if images is None else "memory",
            drop_remainder=True,
            epochs=epochs,
            first_epoch=first_epoch,
            skip_batches=skip,
            passes_per_epoch=c.schedule.passes_per_epoch or 1,
        )
        return self.ready(ds)

    def eval_stream(self, inputs: Inputs, split: ImageSet, batch_size: int) -> tf.data.Dataset:
        """One pass over ``split`` in order, as validation and testing see it."""
        c = self.config
        ds = build_dataset(
            split,
            inputs.prep,
            channels=inputs.channels,
            batch_size=batch_size,
            bad_log=self.bad_log,
            max_pixels=c.data.max_pixels,
            cache=c.data.cache if split is inputs.source.splits.get("val") else None,
        )
        return self.ready(ds)

    def ready(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        """Targets in the loss's form (one-hot for soft labels), sharded by element."""
        if self.one_hot and ds.element_spec[1].shape.rank != 2:
            n = self.num_classes
            ds = ds.map(lambda x, y: (x, tf.one_hot(y, n)))
        return _distributable(ds)

    # Model --------------------------------------------------------------------------------

    def build_model(self, inputs: Inputs, arch: str, *, weights: bool = True) -> keras.Model:
        """The network to train on ``inputs`` (``model.weights`` loaded when ``weights``;
        a fine-tune loads its own after this, into a fresh head)."""
        from resnetkit.models.variants import get_variant

        c = self.config
        for key in ("output_stride", "aux_weight"):
            if getattr(c.model, key):
                raise ValueError(f"model.{key} is a segmentation option; {arch} classifies")
        fresh = c.finetune.source is None
        has_shortcuts = get_variant(arch).shortcut != "none"
        return create_pretrained(
            arch,
            weights=c.model.weights if fresh and weights else None,
            num_classes=self.num_classes,
            input_shape=inputs.input_shape,
            zero_init_residual=c.model.zero_init_residual and has_shortcuts and fresh,
            drop_path_rate=c.model.drop_path_rate,
            classifier_activation="softmax",
            dtype=None if c.run.precision == "float32" else c.run.precision,
            preprocessing=inputs.prep.to_dict(),
        )

    def loss(self) -> keras.losses.Loss:
        if self.one_hot:
            return keras.losses.CategoricalCrossentropy(
                label_smoothing=self.config.optim.label_smoothing
            )
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self) -> list:
        if self.one_hot:
            metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
            top5 = keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")
        else:
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            top5 = keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy")
        return metrics + ([top5] if self.num_classes > 5 else [])

    def class_weight(self, inputs: Inputs) -> dict | None:
        """``data.class_weight="auto"``: class ``k`` weighs ``n / (classes × count_k)``."""
        mode = self.config.data.class_weight
        if mode is None:
            return None
        if mode != "auto":
            raise ValueError(f"data.class_weight must be auto or null; got {mode!r}")
        labels = inputs.source.splits["train"].labels
        counts = np.bincount(labels, minlength=self.num_classes)
        n = len(labels)
        return {k: float(n / (self.num_classes * max(m, 1))) for k, m in enumerate(counts)}

    # After training -----------------------------------------------------------------------

    def test_split(self, inputs: Inputs) -> tuple[str, ImageSet] | None:
        """The split the final figures are measured on: test, else validation."""
        splits = inputs.source.splits
        name = next((s for s in ("test", "val") if len(splits.get(s) or ())), None)
        return None if name is None else (name, splits[name])

    def test_metrics(self, model: keras.Model, inputs: Inputs, batch_size: int) -> dict:
        """The summary's ``test_*`` figures (flip TTA with ``run.tta``)."""
        split = inputs.source.splits.get("test")
        if split is None or not len(split):
            return {}
        ds = self.eval_stream(inputs, split, batch_size)
        test = {
            f"test_{k}": float(v)
            for k, v in model.evaluate(ds, verbose=0, return_dict=True).items()
        }
        if self.config.run.tta:
            from resnetkit.tasks.classify.predict import predict_dataset, tta_metrics

            plain = {f"{k}_no_tta": v for k, v in test.items()}
            flipped = tta_metrics(*predict_dataset(model, ds, tta=True))
            test = {**{f"test_{k}": v for k, v in flipped.items()}, **plain}
        return test

    def describe_test(self, test: dict) -> str | None:
        if not test:
            return None
        line = f"test accuracy {test['test_accuracy']:.4f}"
        if self.config.run.tta:
            line += f" (flip TTA; {test['test_accuracy_no_tta']:.4f} without)"
        return line

    def evaluate(self, model: keras.Model, inputs: Inputs, run: RunDir, batch_size: int) -> None:
        """``evaluation/SPLIT/``: metrics.json, predictions and charts of the test split."""
        from resnetkit.tasks.classify.evaluation import evaluate_split, write_evaluation

        picked = self.test_split(inputs)
        if picked is None:
            return
        name, split = picked
        ev = evaluate_split(
            model,
            split,
            inputs.source.class_names,
            inputs.prep,
            batch_size=batch_size,
            tta=self.config.run.tta,
        )
        ev.metrics.update({"data": self.config.data.source, "split": name})
        write_evaluation(ev, run.evaluation(name), title=f"{name} split")

    def data_summary(self, inputs: Inputs, bad_files: int) -> dict:
        source = inputs.source
        counts = {k: v.counts(source.num_classes) for k, v in source.splits.items() if len(v)}
        return {"classes": source.class_names, "counts": counts, "bad_files": bad_files}


def _distributable(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by element across workers (there are no input files to shard by)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
