"""``Detection``: object detection as the run engine sees it (tasks/base.py).

Images are resized onto a square canvas (``pipeline.py``); targets are RetinaNet's per
anchor (``targets.py``); the model is a ``Detector`` named ``retinanet_BACKBONE_fpn``; the
loss is the focal loss plus the box loss (``losses.py``). Validation tracks the anchor-level
F1 (``metrics.AnchorF1``) for the best checkpoint; the evaluation decodes and suppresses
inside the graph (``decode.py``), maps the boxes back to each image's own pixels, writes
them in COCO's results format and scores them with pycocotools' COCOeval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from statistics import median

import keras
import numpy as np

from resnetkit.data import save_class_map
from resnetkit.data.augment import Augment
from resnetkit.data.boxes import BoxSet, BoxSource, from_box_folder
from resnetkit.data.checks import sample_sizes
from resnetkit.data.pipeline import BadImageLog
from resnetkit.data.sources import ImageSet
from resnetkit.files import write_atomic
from resnetkit.models.builder import ResNet
from resnetkit.models.variants import get_variant
from resnetkit.preprocessing import Preprocessing
from resnetkit.rundir import RunDir
from resnetkit.tasks.classify.inputs import measured_stats
from resnetkit.tasks.detect.anchors import AnchorConfig, anchors
from resnetkit.tasks.detect.coverage import choose_anchor_sizes, coverage
from resnetkit.tasks.detect.decode import inference_model
from resnetkit.tasks.detect.losses import RetinaNetLoss
from resnetkit.tasks.detect.metrics import coco_ground_truth, coco_scores
from resnetkit.tasks.detect.model import (
    LEVELS,
    PYRAMID,
    backbone_of,
    create_detector,
    pyramid_stages,
)
from resnetkit.tasks.detect.pipeline import BoxAugment, box_dataset

MAX_CANVAS = 512  # the canvas: the images' typical longer side, at most this
MIN_CANVAS = 64
CANVAS_STEP = 32
BATCH_PIXELS = 2**19  # the default batch holds at most this many canvas pixels (2 at 512)
SAMPLES = 8  # evaluation images drawn with their boxes


@dataclass
class DetectInputs:
    """The data and what the network is fed: images on ``canvas × canvas`` in training and
    evaluation (any size after export), with the anchors of that canvas."""

    source: BoxSource
    prep: Preprocessing
    channels: int
    canvas: int
    anchor_config: AnchorConfig
    anchors: np.ndarray  # [A, 4] on the canvas, in the heads' order
    grids: list[tuple[int, int]]
    channels_fpn: int  # the pyramid's and heads' width
    decision: str

    @property
    def input_shape(self) -> tuple[None, None, int]:
        return (None, None, self.channels)

    @property
    def image_side(self) -> int:
        return self.canvas

    @property
    def max_batch(self) -> int:
        """The largest default batch: canvases of ``BATCH_PIXELS`` pixels in all."""
        return max(2, BATCH_PIXELS // self.canvas**2)

    def record(self) -> dict:
        return {"input_shape": list(self.input_shape), "canvas": self.canvas,
                "anchors": self.anchor_config.to_dict(), "pyramid_channels": self.channels_fpn,
                "grids": [list(g) for g in self.grids],
                "preprocessing": self.prep.to_dict(), "decision": self.decision}  # fmt: skip


def choose_canvas(train: BoxSet, asked: int | None) -> tuple[int, int, float]:
    """The canvas side (``asked``, else the training images' median longer side rounded up
    to 32, within 64…512), the channels (1 when every sampled image is grey) and that
    median side."""
    sizes, grey = sample_sizes(train.images)
    side = median(max(wh) for wh in sizes)
    canvas = asked or int(min(MAX_CANVAS, max(MIN_CANVAS, _round_up(side, CANVAS_STEP))))
    if canvas % CANVAS_STEP:
        raise ValueError(f"detect.canvas must be a multiple of {CANVAS_STEP}; got {canvas}")
    return canvas, 1 if grey else 3, side


def pyramid_grids(architecture: str, canvas: int, channels: int) -> list[tuple[int, int]]:
    """The (height, width) of P3…P7 for a ``canvas × canvas`` input: the pyramid stages'
    maps (from the backbone's own shapes), then each extra level at half the size."""
    backbone = backbone_of(architecture)
    stages = pyramid_stages(backbone)
    net = ResNet(backbone, input_shape=(canvas, canvas, channels), include_top=False,
                 features=stages)  # fmt: skip
    grids = [tuple(int(d) for d in net.output[s].shape[1:3]) for s in stages]
    for _ in range(LEVELS - len(stages)):
        h, w = grids[-1]
        grids.append((math.ceil(h / 2), math.ceil(w / 2)))
    return grids


def pyramid_width(architecture: str, asked: int | None) -> tuple[int, str]:
    """The pyramid's width: ``asked``, else torchvision's 256 or the backbone's widest
    feature map if narrower (the heads' four convolutions per level cost width², and a
    small-image backbone of 128 channels gains nothing from 256)."""
    if asked is not None:
        if asked < 1:
            raise ValueError(f"detect.channels must be positive; got {asked}")
        return asked, "detect.channels"
    variant = get_variant(backbone_of(architecture))
    widest = max(variant.widths) * variant.expansion
    if widest >= PYRAMID:
        return PYRAMID, "torchvision's"
    return widest, f"the width of {variant.name}'s last stage, below torchvision's {PYRAMID}"


class Detection:
    """One instance per run; ``config`` is the run's resolved ``Config``."""

    name = "detection"
    monitor = "val_anchor_f1"
    # Fine-tuning keeps a pretrained backbone's BatchNorm statistics, as torchvision's
    # detectors do: a batch holds few canvases, too few for stable batch statistics.
    frozen_batchnorm = "detection keeps the backbone's statistics, as torchvision's detectors"

    def __init__(self, config):
        self.config = config
        self.bad_log = BadImageLog()

    # Data ---------------------------------------------------------------------------------

    def load_inputs(self, start=None) -> DetectInputs:
        c, d = self.config, self.config.detect
        backbone_of(c.model.name)  # a detector's name, or an error naming it
        source = from_box_folder(c.data.source, val_fraction=c.data.val_fraction,
                                 seed=c.run.seed, max_pixels=c.data.max_pixels)  # fmt: skip
        self.num_classes = c.model.num_classes or source.num_classes
        train = source.splits["train"]
        canvas, channels, side = choose_canvas(train, d.canvas)
        if start is not None:  # the backbone's weights expect their own normalization
            prep = replace(start.prep, crop_size=canvas, resize_size=canvas)
            stats = f"{start.description}'s normalization"
        else:
            images = ImageSet(labels=np.zeros(len(train), np.int64), paths=list(train.images))
            mean, std = measured_stats(images, channels, c.data.max_pixels)
            prep = Preprocessing("torch", mean, std, crop_size=canvas, resize_size=canvas)
            stats = "mean/std measured on the data"
        grids = pyramid_grids(c.model.name, canvas, channels)
        ratios = tuple(d.anchor_ratios)
        if d.anchor_sizes:
            config = AnchorConfig(tuple(tuple(s) for s in d.anchor_sizes), ratios)
            got = coverage(train, source.class_names, config, canvas, grids, d.positive_iou)
            anchor_line = (
                f"anchors: detect.anchor_sizes (coverage {got.covered:.1%} of "
                f"{got.boxes:,} training boxes at IoU ≥ {d.positive_iou:g})"
            )
        else:
            config, _, anchor_line = choose_anchor_sizes(train, canvas, grids, ratios,
                                                         d.positive_iou)  # fmt: skip
        width, width_why = pyramid_width(c.model.name, d.channels)
        why = "detect.canvas" if d.canvas else f"the images' median longer side {side:g} px"
        boxes = sum(len(b) for b in train.boxes)
        decision = (
            f"input any size × {channels} ch; canvas {canvas}×{canvas} ({why}); data: "
            f"{source.layout} layout, {source.num_classes} classes, {len(train):,} training "
            f"images with {boxes:,} boxes; {stats}\n{anchor_line}\n"
            f"pyramid and heads: {width} channels ({width_why})"
        )
        grid = anchors(config, (canvas, canvas), grids)
        self.inputs = DetectInputs(source, prep, channels, canvas, config, grid, grids, width,
                                   decision)  # fmt: skip
        return self.inputs

    def augmentation(self, inputs: DetectInputs) -> tuple[Augment, str]:
        """Classification's crop settings do not apply: image and boxes are augmented
        together (pipeline.py) with the config's flips."""
        a = replace(self.config.augment, crop="none", pad=0, min_area=1.0)
        b = self._box_augment()
        flips = " + flips" if b.flip else ""
        line = (
            f"augmentation: random scale {b.min_scale:g}–{b.max_scale:g}, crops to the "
            f"{inputs.canvas}×{inputs.canvas} canvas{flips}, boxes with the pixels"
        )
        return a, line

    def _box_augment(self) -> BoxAugment:
        return BoxAugment(flip=self.config.augment.flip)

    def write_targets(self, run: RunDir, inputs: DetectInputs) -> None:
        save_class_map(run.class_map, inputs.source.class_names)

    def _stream(self, inputs: DetectInputs, images: BoxSet, batch_size: int, **options):
        d = self.config.detect
        return box_dataset(images, inputs.prep, inputs.anchors, size=inputs.canvas,
                           channels=inputs.channels, batch_size=batch_size,
                           positive=d.positive_iou, negative=d.negative_iou,
                           **options)  # fmt: skip

    def train_stream(self, inputs: DetectInputs, batch_size: int, *, first_epoch: int = 0,
                     epochs: int = 1, skip: int = 0, images: BoxSet | None = None):  # fmt: skip
        """Epochs ``first_epoch`` … of shuffled, augmented canvases with their targets;
        each epoch of ``schedule.passes_per_epoch`` passes with their own shuffles."""
        c = self.config
        passes = c.schedule.passes_per_epoch or 1
        split = inputs.source.splits["train"] if images is None else images
        ds = None
        for e in range(first_epoch, first_epoch + epochs):
            for p in range(passes):
                part = self._stream(inputs, split, batch_size, training=True,
                                    augment=self._box_augment(), seed=c.run.seed,
                                    epoch=e * passes + p)  # fmt: skip
                ds = part if ds is None else ds.concatenate(part)
        return ds.skip(skip) if skip else ds

    def eval_stream(self, inputs: DetectInputs, split: BoxSet, batch_size: int):
        """``split`` in order, not augmented, with its targets: validation loss and F1."""
        return self._stream(inputs, split, batch_size, targets=True)

    def class_weight(self, inputs: DetectInputs) -> None:
        if self.config.data.class_weight is not None:
            raise ValueError("data.class_weight is not used in detection: the focal loss "
                             "already weighs the rare foreground (detect.focal_alpha)")  # fmt: skip
        return None

    # Model --------------------------------------------------------------------------------

    def build_model(self, inputs: DetectInputs, arch: str, *, weights: bool = True):
        c = self.config
        return create_detector(
            arch,
            num_classes=self.num_classes,
            input_shape=inputs.input_shape,
            anchors=inputs.anchor_config.to_dict(),
            channels=inputs.channels_fpn,
            dtype=None if c.run.precision == "float32" else c.run.precision,
            preprocessing=inputs.prep.to_dict(),
            head_init=c.detect.head_init,
        )

    def loss(self) -> keras.losses.Loss:
        d = self.config.detect
        grid = self.inputs.anchors if d.box_loss == "giou" else None
        return RetinaNetLoss(d.focal_alpha, d.focal_gamma, d.box_loss, grid)

    def metrics(self) -> None:
        """None: the ``Detector`` tracks its own ``anchor_f1`` (Keras' compiled metrics
        would want one target per output)."""
        return None

    # After training -----------------------------------------------------------------------

    def detect(self, model, inputs: DetectInputs, split: BoxSet, batch_size: int) -> list[dict]:
        """Detections of ``split`` in COCO's results format: boxes in each image's own
        pixels, the source's category ids, image id = position in the split."""
        d = self.config.detect
        final = inference_model(model, score_threshold=d.score_threshold, top_k=d.top_k,
                                nms_iou=d.nms_iou, detections=d.detections)  # fmt: skip
        ids = inputs.source.category_ids or list(range(1, inputs.source.num_classes + 1))
        out = []
        for images, info in self._stream(inputs, split, batch_size):
            got = {k: np.asarray(v) for k, v in final(images, training=False).items()}
            rows = zip(info["index"].numpy(), info["scale"].numpy(), strict=True)
            for row, (index, scale) in enumerate(rows):
                h, w = split.sizes[index]
                n = int(got["count"][row])
                boxes = got["boxes"][row, :n] / scale
                boxes = np.clip(boxes, 0, [w, h, w, h])
                for box, score, k in zip(boxes, got["scores"][row, :n], got["classes"][row, :n],
                                         strict=True):  # fmt: skip
                    x1, y1, x2, y2 = (float(v) for v in box)
                    out.append({"image_id": int(index), "category_id": int(ids[int(k)]),
                                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2),
                                         round(y2 - y1, 2)],
                                "score": round(float(score), 5)})  # fmt: skip
        return out

    def split_scores(self, model, inputs: DetectInputs, split: BoxSet,
                     batch_size: int) -> tuple[dict, list[dict]]:  # fmt: skip
        """COCOeval's figures on ``split`` and the detections they were computed from."""
        source = inputs.source
        found = self.detect(model, inputs, split, batch_size)
        truth = coco_ground_truth(split, source.class_names, source.category_ids)
        return coco_scores(truth, found, source.class_names), found

    def test_metrics(self, model, inputs: DetectInputs, batch_size: int) -> dict:
        split = inputs.source.splits.get("test")
        if split is None or not len(split):
            return {}
        got, _ = self.split_scores(model, inputs, split, batch_size)
        return {"test_map": got["map"], "test_map_50": got["map_50"]}

    def describe_test(self, test: dict) -> str | None:
        if not test:
            return None
        return f"test mAP {test['test_map']:.4f} (mAP@0.5 {test['test_map_50']:.4f}, pycocotools)"

    def evaluate(self, model, inputs: DetectInputs, run: RunDir,
                 batch_size: int) -> str | None:  # fmt: skip
        """``evaluation/SPLIT/``: metrics.json (COCOeval), detections.json, and sample
        images with their true and predicted boxes; the line saying its mAP."""
        splits = inputs.source.splits
        name = next((s for s in ("test", "val") if len(splits.get(s) or ())), None)
        if name is None:
            return None
        got, found = self.split_scores(model, inputs, splits[name], batch_size)
        got.update({"data": self.config.data.source, "split": name, "images": len(splits[name])})
        folder = run.evaluation(name)
        folder.mkdir(parents=True, exist_ok=True)
        write_evaluation(folder, got, found, splits[name], inputs.source)
        return (f"{name} mAP {got['map']:.4f} (mAP@0.5 {got['map_50']:.4f}, pycocotools, "
                f"{len(splits[name]):,} images): {folder / 'metrics.json'}")  # fmt: skip

    def data_summary(self, inputs: DetectInputs, bad_files: int) -> dict:
        source = inputs.source
        images = {k: len(v) for k, v in source.splits.items() if len(v)}
        counts = {k: source.splits[k].class_counts(source.num_classes) for k in images}
        return {"classes": source.class_names, "counts": counts, "unit": "boxes",
                "images": images, "bad_files": bad_files}  # fmt: skip


def write_evaluation(folder, scores: dict, found: list[dict], split: BoxSet,
                     source: BoxSource) -> None:  # fmt: skip
    """metrics.json, detections.json, pr_curves.png, samples/ and worst/ in ``folder``."""
    from resnetkit.plots import pr_curves
    from resnetkit.tasks.detect.predict import draw_samples

    write_atomic(folder / "metrics.json", json.dumps(scores, indent=1))
    write_atomic(folder / "detections.json", json.dumps(found))
    pr_curves(scores["pr_curves_50"], scores["per_class_ap_50"], folder / "pr_curves.png")
    draw_samples(split, found, source, folder, count=SAMPLES)


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)
