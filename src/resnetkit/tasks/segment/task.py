"""``Segmentation``: semantic segmentation as the run engine sees it (tasks/base.py).

Targets are class-index masks (255 ignored); the model is a ``Segmenter`` named
``HEAD_BACKBONE``; the loss is per-pixel cross-entropy that ignores 255; the training
metric is Keras' ``MeanIoU``; evaluation accumulates a confusion matrix over the whole split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from statistics import median

import keras
import numpy as np

from resnetkit.data import save_class_map
from resnetkit.data.augment import Augment
from resnetkit.data.checks import sample_sizes
from resnetkit.data.masks import IGNORE, MaskSet, MaskSource, from_mask_folder
from resnetkit.data.pipeline import BadImageLog
from resnetkit.files import write_atomic
from resnetkit.plots import confusion_matrix
from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir
from resnetkit.tasks.classify.inputs import measured_stats
from resnetkit.tasks.segment.metrics import confusion, mean_iou_metric, scores
from resnetkit.tasks.segment.model import create_segmenter, main_logits, split_name
from resnetkit.tasks.segment.pipeline import JointAugment, pair_dataset
from resnetkit.tasks.segment.predict import triptychs

MAX_CROP = 512  # training crops: the images' typical shorter side, at most this
SAMPLE = 64  # files whose sizes and modes decide the crop and the channels


@dataclass
class SegmentInputs:
    """The data and what the network is fed: any size at run time, ``crop`` in training."""

    source: MaskSource
    prep: Preprocessing
    channels: int
    crop: int
    decision: str

    @property
    def input_shape(self) -> tuple[None, None, int]:
        return (None, None, self.channels)

    @property
    def image_side(self) -> int:
        return self.crop

    def record(self) -> dict:
        return {"input_shape": list(self.input_shape), "crop": self.crop,
                "preprocessing": self.prep.to_dict(), "decision": self.decision}  # fmt: skip


class Segmentation:
    """One instance per run; ``config`` is the run's resolved ``Config``."""

    name = "segmentation"
    monitor = "val_miou"

    def __init__(self, config):
        self.config = config
        self.bad_log = BadImageLog()

    # Data ---------------------------------------------------------------------------------

    def load_inputs(self, start=None) -> SegmentInputs:
        c = self.config
        split_name(c.model.name)  # a segmentation model's name, or an error naming it
        source = from_mask_folder(c.data.source, val_fraction=c.data.val_fraction,
                                  seed=c.run.seed, max_pixels=c.data.max_pixels)  # fmt: skip
        self.num_classes = c.model.num_classes or source.num_classes
        train = source.splits["train"]
        sizes, grey = sample_sizes(train.images, SAMPLE)
        sides = [min(wh) for wh in sizes]
        channels = 1 if grey else 3
        side = median(sides)
        crop = int(c.model.input_size[0]) if c.model.input_size else int(min(MAX_CROP, side))
        if start is not None:  # the backbone's weights expect their own normalization
            prep = replace(start.prep, crop_size=crop, resize_size=crop)
            stats = f"{start.description}'s normalization"
        else:
            mean, std = measured_stats(_as_image_set(train), channels, c.data.max_pixels)
            prep = Preprocessing("torch", mean, std, crop_size=crop, resize_size=crop)
            stats = "mean/std measured on the data"
        why = "model.input_size" if c.model.input_size else f"the images' median side {side:g} px"
        decision = (
            f"input any size × {channels} ch; training crops {crop}×{crop} ({why}); "
            f"data: {source.layout} layout, {source.num_classes} classes, "
            f"{len(train):,} training pairs; {stats}"
        )
        return SegmentInputs(source, prep, channels, crop, decision)

    def augmentation(self, inputs: SegmentInputs) -> tuple[Augment, str]:
        """Classification's crop settings do not apply: image and mask are augmented
        together (pipeline.py) with the config's flips."""
        a = replace(self.config.augment, crop="none", pad=0, min_area=1.0)
        j = self._joint(inputs)
        flips = " + flips" if j.flip else ""
        line = (
            f"augmentation: random scale {j.min_scale:g}–{j.max_scale:g}, {j.crop}×{j.crop} "
            f"crops{flips}, image and mask together"
        )
        return a, line

    def _joint(self, inputs: SegmentInputs) -> JointAugment:
        return JointAugment(crop=inputs.crop, flip=self.config.augment.flip)

    def write_targets(self, run: RunDir, inputs: SegmentInputs) -> None:
        save_class_map(run.class_map, inputs.source.class_names)

    def train_stream(self, inputs: SegmentInputs, batch_size: int, *, first_epoch: int = 0,
                     epochs: int = 1, skip: int = 0, images: MaskSet | None = None):  # fmt: skip
        """Epochs ``first_epoch`` … of shuffled, jointly augmented crops; each epoch of
        ``schedule.passes_per_epoch`` passes with their own shuffles and crops."""
        c = self.config
        passes = c.schedule.passes_per_epoch or 1
        pairs = inputs.source.splits["train"] if images is None else images
        ds = None
        for e in range(first_epoch, first_epoch + epochs):
            for p in range(passes):
                part = pair_dataset(pairs, inputs.prep, channels=inputs.channels,
                                    batch_size=batch_size, training=True,
                                    augment=self._joint(inputs), seed=c.run.seed,
                                    epoch=e * passes + p)  # fmt: skip
                ds = part if ds is None else ds.concatenate(part)
        return ds.skip(skip) if skip else ds

    def eval_stream(self, inputs: SegmentInputs, split: MaskSet, batch_size: int):
        """``split`` in order at full size, batches padded to their largest image."""
        return pair_dataset(split, inputs.prep, channels=inputs.channels, batch_size=batch_size)

    def class_weight(self, inputs: SegmentInputs) -> None:
        """``data.class_weight="auto"``: class ``k``'s pixels weigh ``n / (classes ×
        pixels_k)`` in the loss (``loss()``); Keras' ``class_weight`` takes one label per
        example, not per pixel, so nothing is returned to it."""
        mode = self.config.data.class_weight
        if mode is None:
            return None
        if mode != "auto":
            raise ValueError(f"data.class_weight must be auto or null; got {mode!r}")
        counts = np.asarray(inputs.source.pixels["train"], np.float64)
        k = len(counts)
        self.pixel_weights = [float(counts.sum() / (k * c)) if c else 1.0 for c in counts]
        return None

    # Model --------------------------------------------------------------------------------

    def build_model(self, inputs: SegmentInputs, arch: str, *, weights: bool = True):
        c = self.config
        if c.model.aux_weight < 0:
            raise ValueError(f"model.aux_weight must be >= 0 (0: no auxiliary head); got "
                             f"{c.model.aux_weight}")  # fmt: skip
        return create_segmenter(
            arch,
            num_classes=self.num_classes,
            input_shape=inputs.input_shape,
            output_stride=c.model.output_stride,
            aux=c.model.aux_weight > 0,
            aux_weight=c.model.aux_weight,
            dtype=None if c.run.precision == "float32" else c.run.precision,
            preprocessing=inputs.prep.to_dict(),
        )

    def loss(self) -> keras.losses.Loss:
        """Keras' cross-entropy ignoring 255, or ``SegmentationLoss`` for per-pixel class
        weights (``data.class_weight=auto``) or a Dice term (``optim.dice_weight``)."""
        weights = getattr(self, "pixel_weights", None)
        dice = self.config.optim.dice_weight
        if weights is None and not dice:
            return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
        from resnetkit.tasks.segment.losses import SegmentationLoss

        return SegmentationLoss(self.num_classes, weights, dice)

    def metrics(self) -> list:
        return [mean_iou_metric(self.num_classes)]

    # After training -----------------------------------------------------------------------

    def split_scores(self, model, inputs: SegmentInputs, split: MaskSet, batch_size: int) -> dict:
        """mIoU, per-class IoU, pixel accuracy and fw-IoU over the whole ``split``."""
        matrix = np.zeros((self.num_classes,) * 2, np.int64)
        for images, masks in self.eval_stream(inputs, split, batch_size):
            predicted = np.argmax(np.asarray(main_logits(model(images, training=False))), axis=-1)
            matrix += confusion(masks.numpy(), predicted, self.num_classes)
        return {**scores(matrix, inputs.source.class_names), "confusion": matrix.tolist()}

    def test_metrics(self, model, inputs: SegmentInputs, batch_size: int) -> dict:
        split = inputs.source.splits.get("test")
        if split is None or not len(split):
            return {}
        got = self.split_scores(model, inputs, split, batch_size)
        return {"test_miou": got["miou"], "test_pixel_accuracy": got["pixel_accuracy"]}

    def describe_test(self, test: dict) -> str | None:
        if not test:
            return None
        return (
            f"test mIoU {test['test_miou']:.4f} (pixel accuracy {test['test_pixel_accuracy']:.4f})"
        )

    def evaluate(self, model, inputs: SegmentInputs, run: RunDir,
                 batch_size: int) -> str | None:  # fmt: skip
        """``evaluation/SPLIT/metrics.json`` of the test split (else the validation split);
        the line saying its mIoU."""
        splits = inputs.source.splits
        name = next((s for s in ("test", "val") if len(splits.get(s) or ())), None)
        if name is None:
            return None
        got = self.split_scores(model, inputs, splits[name], batch_size)
        got.update({"data": self.config.data.source, "split": name, "images": len(splits[name])})
        folder = run.evaluation(name)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "metrics.json", json.dumps(got, indent=1))
        confusion_matrix(np.asarray(got["confusion"]), inputs.source.class_names,
                         folder / "confusion_matrix_normalized.png", normalized=True,
                         title=f"pixels, {name} split")  # fmt: skip
        triptychs(model, splits[name], inputs.prep, inputs.channels, folder)
        return (f"{name} mIoU {got['miou']:.4f} (pixel accuracy {got['pixel_accuracy']:.4f}, "
                f"{len(splits[name]):,} images): {folder / 'metrics.json'}")  # fmt: skip

    def data_summary(self, inputs: SegmentInputs, bad_files: int) -> dict:
        source = inputs.source
        pairs = {k: len(v) for k, v in source.splits.items() if len(v)}
        pixels = {k: source.pixels[k] for k in pairs}  # per class, 255 left out
        return {"classes": source.class_names, "counts": pixels, "unit": "pixels",
                "pairs": pairs, "bad_files": bad_files}  # fmt: skip


def _as_image_set(pairs: MaskSet):
    from resnetkit.data.sources import ImageSet

    return ImageSet(labels=np.zeros(len(pairs), np.int64), paths=list(pairs.images))
