"""Where a resnetkit training step spends its time: forward, forward + backward, and the
whole step (with the SGD update), each compiled as ``train()`` compiles it, plus the top
TensorFlow ops of one profiled step.

    .venv/bin/python benchmarks/profile_step.py [--model resnet20 --size 32 --batch 128]

Prints milliseconds per batch for each part and writes the TensorFlow profiler trace to
--trace (open it with TensorBoard's profile plugin).
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed(fn, repeats: int = 5) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--trace", default="")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from resnetkit.models import create_model

    model = create_model(args.model, input_shape=(args.size, args.size, 3), num_classes=10)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((args.batch, args.size, args.size, 3), np.float32))
    y = tf.constant(rng.integers(0, 10, args.batch))

    @tf.function
    def forward():
        return loss_fn(y, model(x, training=True))

    @tf.function
    def backward():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    model.compile(optimizer=optimizer, loss=loss_fn)
    parts = {
        "forward": timed(lambda: forward().numpy()),
        "forward+backward": timed(lambda: next(g.numpy() for g in backward())),
        "step (train_on_batch)": timed(lambda: model.train_on_batch(x, y)),
    }
    for name, ms in parts.items():
        print(f"{name:>24}: {ms:8.1f} ms/batch  {args.batch / ms * 1000:7.1f} images/s")
    if args.trace:
        tf.profiler.experimental.start(args.trace)
        model.train_on_batch(x, y)
        tf.profiler.experimental.stop()
        print(f"trace: {args.trace}")


if __name__ == "__main__":
    main()
