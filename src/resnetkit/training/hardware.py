"""What the machine can do fast: native bfloat16, and the precision ``auto`` resolves to.

Mixed bfloat16 is a gain on CPUs with AVX512_BF16 or AMX and a large loss on CPUs without
them, where oneDNN emulates it (benchmarks/results/speed-*.json hold the measurements per
machine kind). Recipes therefore say ``run.precision: auto``, and a run's saved config
records what it chose.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    if platform.machine() in ("arm64", "aarch64"):
        return "bf16" in cpu_flags()  # Arm's BF16 extension
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def resolve_precision(precision: str) -> str:
    """``auto`` → ``mixed_bfloat16`` on a GPU of compute capability 8.0+ or a CPU with native
    bfloat16, ``mixed_float16`` on older GPUs, else ``float32``; other values unchanged."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        major = (details.get("compute_capability") or (0, 0))[0]
        return "mixed_bfloat16" if major >= 8 else "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


def slow_precision_warning(precision: str) -> str | None:
    """A warning when bfloat16 was asked for on a CPU that can only emulate it."""
    import tensorflow as tf

    if precision != "mixed_bfloat16" or tf.config.list_physical_devices("GPU"):
        return None
    if cpu_has_native_bf16():
        return None
    return (
        "warning: run.precision=mixed_bfloat16 on a CPU without native bfloat16 "
        "(no avx512_bf16/amx_bf16): it is emulated and several times slower than float32; "
        "run.precision=auto picks the fast one"
    )
