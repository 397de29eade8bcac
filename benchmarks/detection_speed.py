"""Detection speed: resnetkit's RetinaNet against torchvision's and keras-hub's, side by side.

Command (installs PyTorch, torchvision and keras-hub in .venv-interop on first use):

    make bench-detection-speed   # or: .venv-interop/bin/python benchmarks/detection_speed.py

``retinanet_resnet50_fpn`` at 91 classes, the same input size and batch for every contender,
synthetic images with four boxes each, one fresh process per contender, warm-up steps
excluded, the median of timed repeats (``speed.py``'s timing):

- Training step: forward, the loss, backward and SGD with momentum. torchvision
  ``retinanet_resnet50_fpn`` (no pretrained weights, so trainable BatchNorm everywhere, as
  resnetkit's here; its transform resizing to the same size), PyTorch eager, contiguous and
  channels_last; keras-hub ``RetinaNetObjectDetector`` over a ResNet-50 v1
  ``ResNetBackbone``, its default losses; resnetkit compiled as ``resnetkit train``
  compiles. torchvision and keras-hub match anchors to boxes inside the step, resnetkit in
  its input pipeline: resnetkit's figure is its step plus that matching timed alone, one
  after the other (``step_only_images_per_second`` is the step without it).
- Inference, batch 1: the exported ONNX artifact (decoding and NMS inside, on onnxruntime)
  and the exported SavedModel, against torchvision eager in inference mode (its
  postprocessing and NMS included) in both memory formats.

Results go to benchmarks/results/detection-speed-<isa>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import hardware, isa_tag, peer_versions, write_report
from speed import add_process_arguments, median_rate, rss, spawn, timing

ROOT = Path(__file__).resolve().parent.parent
CLASSES = 91
BOXES = 4
TRAINERS = ("resnetkit", "torchvision", "torchvision-channels-last", "keras-hub")
INFERENCE = ("resnetkit-onnx", "resnetkit-savedmodel", "torchvision",
             "torchvision-channels-last")  # fmt: skip


def images_and_boxes(batch: int, size: int):
    """Normalized images and ``BOXES`` boxes (x1, y1, x2, y2 in pixels, 16 to half the
    image) per image with class ids 1…90."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3), dtype=np.float32)
    wh = rng.uniform(16, size / 2, (batch, BOXES, 2))
    xy = rng.uniform(0, 1, (batch, BOXES, 2)) * (size - wh)
    boxes = np.concatenate([xy, xy + wh], axis=-1).astype(np.float32)
    return x, boxes, rng.integers(1, CLASSES, (batch, BOXES))


def _trainable(model) -> int:
    import numpy as np

    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def train_resnetkit(size: int, batch: int, opts) -> dict:
    import keras
    import tensorflow as tf

    from resnetkit.tasks.detect.anchors import AnchorConfig, anchors
    from resnetkit.tasks.detect.losses import RetinaNetLoss
    from resnetkit.tasks.detect.model import create_detector
    from resnetkit.tasks.detect.targets import encode_targets
    from resnetkit.tasks.detect.task import pyramid_grids

    name = "retinanet_resnet50_fpn"
    model = create_detector(name, num_classes=CLASSES, input_shape=(size, size, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=RetinaNetLoss(),
                  jit_compile=opts.jit)  # fmt: skip
    grid = tf.constant(anchors(AnchorConfig(), (size, size), pyramid_grids(name, size, 3)))
    x, boxes, labels = images_and_boxes(batch, size)

    @tf.function
    def encode(boxes, labels):
        rows = [encode_targets(boxes[i], labels[i], grid) for i in range(batch)]
        return {k: tf.stack([r[k] for r in rows]) for k in rows[0]}

    y = encode(tf.constant(boxes), tf.constant(labels))
    x = tf.constant(x)
    step = median_rate(lambda: model.train_on_batch(x, y), batch, **timing(opts, size))
    matching = median_rate(lambda: encode(boxes, labels)["classes"].numpy(), batch,
                           **timing(opts, size))  # fmt: skip
    both = 1 / (1 / step["images_per_second"] + 1 / matching["images_per_second"])
    return {"images_per_second": both, "step_only_images_per_second": step["images_per_second"],
            "matching_images_per_second": matching["images_per_second"], "step": step,
            "trainable_parameters": _trainable(model), **rss()}  # fmt: skip


def keras_hub_detector(size: int):
    import keras_hub

    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
        use_pre_activation=False, image_shape=(size, size, 3),
    )  # fmt: skip
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=7, use_p5=False, image_shape=(size, size, 3)
    )
    return keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=CLASSES, bounding_box_format="xyxy"
    )


def train_keras_hub(size: int, batch: int, opts) -> dict:
    import keras
    import tensorflow as tf

    model = keras_hub_detector(size)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=opts.jit)
    x, boxes, labels = images_and_boxes(batch, size)
    y = {"boxes": tf.constant(boxes), "labels": tf.constant(labels, tf.float32)}
    x = tf.constant(x)
    # keras-hub's own train_on_batch turns the box dict into one tensor and fails; its
    # preprocessor is None here, so Keras' is the same step.
    step = keras.Model.train_on_batch
    result = median_rate(lambda: step(model, x, y), batch, **timing(opts, size))
    result.update(trainable_parameters=_trainable(model), **rss())
    return result


def torchvision_detector(contender: str, size: int):
    import torch
    import torchvision

    torch.manual_seed(0)
    fmt = torch.channels_last if contender.endswith("channels-last") else torch.contiguous_format
    model = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=CLASSES, min_size=size, max_size=size
    )
    return model.to(memory_format=fmt), fmt


def train_torch(contender: str, size: int, batch: int, opts) -> dict:
    import torch

    model, fmt = torchvision_detector(contender, size)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, boxes, labels = images_and_boxes(batch, size)
    images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    targets = [{"boxes": torch.from_numpy(b), "labels": torch.from_numpy(k)}
               for b, k in zip(boxes, labels, strict=True)]  # fmt: skip

    def step():
        optimizer.zero_grad(set_to_none=True)
        losses = model(list(images), targets)
        loss = sum(losses.values())
        loss.backward()
        optimizer.step()
        return loss.item()

    result = median_rate(step, batch, **timing(opts, size))
    result.update(rss(), threads=torch.get_num_threads(),
                  trainable_parameters=sum(p.numel() for p in model.parameters()
                                           if p.requires_grad))  # fmt: skip
    return result


def exported(size: int, format: str, work: Path) -> Path:
    """The random-initialised detector, BatchNorm folded, with decoding and NMS inside,
    written by ``resnetkit export``'s own graph builder and Keras' exporter.

    Random weights saturate the scores (every candidate passes the threshold), in
    torchvision's model as in this one, so both decode and suppress as many candidates as
    they can: NMS's worst case. ``export_detector``'s parity check needs separated scores,
    so it is not run here; the test suite runs it on trained detectors."""
    import keras

    from resnetkit.export.detection import _decoded
    from resnetkit.export.export import FORMATS, _write_graph
    from resnetkit.export.fold import inference_model
    from resnetkit.tasks.detect.model import create_detector

    detector = create_detector("retinanet_resnet50_fpn", num_classes=CLASSES)
    out = detector.output
    levels = [detector.get_layer(n).output for n in detector.level_names]
    network = keras.Model(detector.inputs, [out["cls_logits"], out["bbox_regression"], *levels])
    deploy, _ = inference_model(network, fold=True)
    graph = _decoded(deploy, size, 3, {"anchors": detector.anchor_config.to_dict()})
    keras_format, filename, _ = FORMATS[format]
    _write_graph(graph, work / filename, keras_format, {}, size)
    return work / filename


def infer_resnetkit(contender: str, size: int, opts) -> dict:
    from resnetkit.export.artifacts import open_runtime

    format = contender.removeprefix("resnetkit-")
    runtime = {"onnx": "onnxruntime", "savedmodel": "tensorflow"}[format]
    x, _, _ = images_and_boxes(1, size)
    with tempfile.TemporaryDirectory() as tmp:
        run = open_runtime(exported(size, format, Path(tmp)), runtime, named=True)
        assert set(run(x)) >= {"boxes", "scores", "classes", "count"}, contender
        result = median_rate(lambda: run(x), 1, **timing(opts, size, inference=True))
    result.update(latency_ms=1000 / result["images_per_second"], **rss())
    return result


def infer_torch(contender: str, size: int, opts) -> dict:
    import torch

    model, fmt = torchvision_detector(contender, size)
    model.eval()
    x, _, _ = images_and_boxes(1, size)
    image = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)

    def run():
        with torch.inference_mode():
            return model(list(image))

    result = median_rate(run, 1, **timing(opts, size, inference=True))
    result.update(latency_ms=1000 / result["images_per_second"], **rss())
    return result


def jobs(size: int, batch: int) -> list[dict]:
    out = [{"kind": "train", "contender": c, "size": size, "batch": batch} for c in TRAINERS]
    return out + [{"kind": "infer", "contender": c, "size": size} for c in INFERENCE]


def run_job(job: dict, opts) -> dict:
    c, size = job["contender"], job["size"]
    if job["kind"] == "infer":
        fn = infer_torch if c.startswith("torchvision") else infer_resnetkit
        return fn(c, size, opts)
    if c.startswith("torchvision"):
        return train_torch(c, size, job["batch"], opts)
    return (train_keras_hub if c == "keras-hub" else train_resnetkit)(size, job["batch"], opts)


def _best(results: dict, kind: str, contenders) -> tuple[str, float] | None:
    rates = {c: results.get(f"{kind}/{c}", {}).get("images_per_second") for c in contenders}
    rates = {c: r for c, r in rates.items() if r}
    return max(rates.items(), key=lambda kv: kv[1]) if rates else None


def summarize(results: dict) -> dict:
    """resnetkit's rate over each peer's best contender, with the goals of the issue."""
    out = {}
    ours = _best(results, "train", ["resnetkit"])
    for peer, contenders, goal in (
        ("torchvision training", ["torchvision", "torchvision-channels-last"], 1.0),
        ("keras-hub training", ["keras-hub"], 1.0),
    ):
        theirs = _best(results, "train", contenders)
        if ours and theirs:
            ratio = ours[1] / theirs[1]
            out[peer] = {"resnetkit": round(ours[1], 3), "peer": theirs[0],
                         "peer_images_per_second": round(theirs[1], 3),
                         "ratio": round(ratio, 3), "goal": goal, "met": ratio >= goal}  # fmt: skip
    theirs = _best(results, "infer", ["torchvision", "torchvision-channels-last"])
    for artifact in ("resnetkit-onnx", "resnetkit-savedmodel"):
        ours = _best(results, "infer", [artifact])
        if ours and theirs:
            ratio = ours[1] / theirs[1]
            out[f"{artifact} inference"] = {
                "latency_ms": round(1000 / ours[1], 1), "peer": theirs[0],
                "peer_latency_ms": round(1000 / theirs[1], 1), "ratio": round(ratio, 3),
                "goal": 1.2, "met": ratio >= 1.2,
            }  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_process_arguments(parser)
    parser.add_argument("--size", type=int, default=512, help="input side (a multiple of 128)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated job ids (kind/contender)")
    parser.add_argument("--out", type=Path, default=None)
    parser.set_defaults(repeats=3, min_seconds=10.0)
    opts = parser.parse_args()
    if opts.job:
        opts.result.write_text(json.dumps(run_job(json.loads(opts.job), opts)))
        return 0
    results = {}
    for job in jobs(opts.size, opts.batch):
        key = f"{job['kind']}/{job['contender']}"
        if opts.only and key not in opts.only.split(","):
            continue
        results[key] = spawn(job, opts, script=__file__)
        print(f"{key}: {json.dumps(results[key])[:200]}", flush=True)
    settings = {"size": opts.size, "batch": opts.batch, "classes": CLASSES,
                "boxes_per_image": BOXES, "warmup": opts.warmup, "repeats": opts.repeats,
                "min_seconds": opts.min_seconds, "jit": opts.jit}  # fmt: skip
    report = {
        "benchmark": "detection speed, resnetkit vs torchvision vs keras-hub",
        "command": "python benchmarks/detection_speed.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": settings,
        "hardware": hardware(),
        "versions": peer_versions(),
        "results": results,
        "summary": summarize(results),
    }
    write_report(report, opts.out or ROOT / "benchmarks" / "results" /
                 f"detection-speed-{isa_tag()}.json")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
