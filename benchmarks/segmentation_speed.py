"""Segmentation training speed: resnetkit against torchvision and keras-hub, side by side.

Command (installs PyTorch, torchvision and keras-hub in .venv-interop on first use):

    make bench-segmentation-speed   # or: .venv-interop/bin/python benchmarks/segmentation_speed.py

Each peer against the resnetkit model built the way it builds its own, on a ResNet-50
backbone, at the same input size, batch and 21 classes, on synthetic images and masks
(255 ignored in the loss), one fresh process per contender, warm-up steps excluded, the
median of timed repeats reported (``speed.py``'s timing):

- torchvision ``deeplabv3_resnet50`` (output stride 8, ASPP 12/24/36, no auxiliary head),
  PyTorch eager, contiguous and channels_last; resnetkit ``deeplabv3_resnet50``.
- keras-hub ``DeepLabV3ImageSegmenter`` over ``ResNetBackbone`` (ResNet-50 v1): output
  stride 32 (keras-hub does not dilate), ASPP 6/12/18, a 48-channel stage-1 projection;
  resnetkit ``deeplabv3plus_resnet50`` at output stride 32 with the same rates. The two
  decoders differ in detail, so each row records its multiply-accumulates.

A training step is forward, cross-entropy ignoring 255, backward and SGD with momentum;
the Keras contenders compile as ``resnetkit train`` compiles. Results go to
benchmarks/results/segmentation-speed-<isa>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import hardware, isa_tag, peer_versions, write_report
from speed import add_process_arguments, median_rate, rss, spawn, timing

ROOT = Path(__file__).resolve().parent.parent
CLASSES = 21
PAIRS = {  # peer: (its contenders, resnetkit's model and options)
    "torchvision": (("torchvision", "torchvision-channels-last"),
                    ("deeplabv3_resnet50", {})),
    "keras-hub": (("keras-hub",),
                  ("deeplabv3plus_resnet50", {"output_stride": 32, "aspp_rates": (6, 12, 18)})),
}  # fmt: skip


def masks(batch: int, size: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3), dtype=np.float32)
    y = rng.integers(0, CLASSES, (batch, size, size))
    y[:, : size // 8] = 255  # an ignored band, as at object borders
    return x, y


def keras_hub_segmenter(size: int):
    import keras_hub

    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
        use_pre_activation=False, image_shape=(size, size, 3),
    )  # fmt: skip
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, low_level_feature_key="P2", spatial_pyramid_pooling_key="P5",
        upsampling_size=8, dilation_rates=[6, 12, 18], projection_filters=48,
        image_shape=(size, size, 3),
    )  # fmt: skip
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=CLASSES)


def train_keras(contender: str, size: int, batch: int, opts) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from resnetkit.models import count_macs
    from resnetkit.tasks.segment.model import create_segmenter

    if contender == "keras-hub":
        model = keras_hub_segmenter(size)
    else:
        name, options = PAIRS[contender.removeprefix("resnetkit-")][1]
        model = create_segmenter(name, num_classes=CLASSES, input_shape=(size, size, 3),
                                 **options)  # fmt: skip
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    # No metrics for any: keras-hub's default (categorical accuracy) wants one-hot masks.
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, metrics=[],
                  jit_compile=opts.jit)  # fmt: skip
    x, y = (tf.constant(a) for a in masks(batch, size))
    assert tuple(model(x[:1]).shape) == (1, size, size, CLASSES), contender
    result = median_rate(lambda: model.train_on_batch(x, y), batch, **timing(opts, size))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    result.update(**rss(), macs=count_macs(model).macs, trainable_parameters=trainable)
    return result


def train_torch(contender: str, size: int, batch: int, opts) -> dict:
    import torch
    import torchvision

    torch.manual_seed(0)
    fmt = torch.channels_last if contender.endswith("channels-last") else torch.contiguous_format
    model = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, num_classes=CLASSES, aux_loss=False
    )
    model = model.to(memory_format=fmt).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = masks(batch, size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    y = torch.from_numpy(labels)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out = model(x)["out"]
        loss = torch.nn.functional.cross_entropy(out, y, ignore_index=255)
        loss.backward()
        optimizer.step()
        return loss.item()

    result = median_rate(step, batch, **timing(opts, size))
    result.update(**rss(), threads=torch.get_num_threads(),
                  trainable_parameters=sum(p.numel() for p in model.parameters()))  # fmt: skip
    return result


def jobs(peers: list[str], size: int, batch: int) -> list[dict]:
    """Each peer's resnetkit contender, then the peer's own, one process each."""
    out = []
    for peer in peers:
        contenders, _ = PAIRS[peer]
        for c in (f"resnetkit-{peer}", *contenders):
            out.append({"contender": c, "size": size, "batch": batch})
    return out


def run_job(job: dict, opts) -> dict:
    c = job["contender"]
    fn = train_torch if c.startswith("torchvision") else train_keras
    return fn(c, job["size"], job["batch"], opts)


def summarize(results: dict) -> dict:
    """Per peer: resnetkit's images/s over the peer's best contender."""
    out = {}
    for peer, (contenders, (name, options)) in PAIRS.items():
        ours = results.get(f"resnetkit-{peer}", {}).get("images_per_second")
        theirs = {c: results[c]["images_per_second"] for c in contenders
                  if "images_per_second" in results.get(c, {})}  # fmt: skip
        if ours is None or not theirs:
            continue
        best = max(theirs, key=theirs.get)
        out[peer] = {"resnetkit_model": name, "options": options, "resnetkit": round(ours, 3),
                     "peer": best, "peer_images_per_second": round(theirs[best], 3),
                     "ratio": round(ours / theirs[best], 3), "goal": 1.0,
                     "met": ours >= theirs[best]}  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_process_arguments(parser)
    parser.add_argument("--size", type=int, default=256, help="input side (a multiple of 32)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--peers", default="torchvision,keras-hub")
    parser.add_argument("--out", type=Path, default=None)
    parser.set_defaults(repeats=3, min_seconds=10.0)
    opts = parser.parse_args()
    if opts.job:
        opts.result.write_text(json.dumps(run_job(json.loads(opts.job), opts)))
        return 0
    results = {}
    for job in jobs(opts.peers.split(","), opts.size, opts.batch):
        results[job["contender"]] = spawn(job, opts, script=__file__)
        print(f"{job['contender']}: {json.dumps(results[job['contender']])[:200]}", flush=True)
    report = {
        "benchmark": "segmentation training speed, resnetkit vs torchvision vs keras-hub",
        "command": "python benchmarks/segmentation_speed.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {
            "size": opts.size,
            "batch": opts.batch,
            "classes": CLASSES,
            "warmup": opts.warmup,
            "repeats": opts.repeats,
            "min_seconds": opts.min_seconds,
            "jit": opts.jit,
        },
        "hardware": hardware(),
        "versions": peer_versions(),
        "results": results,
        "summary": summarize(results),
    }
    write_report(report, opts.out or ROOT / "benchmarks" / "results" /
                 f"segmentation-speed-{isa_tag()}.json")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
