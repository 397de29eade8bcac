"""What every benchmark records beside its figures: library versions and hardware."""

from __future__ import annotations

import os
import platform


def versions() -> dict:
    """resnetkit's own record of versions (``resnetkit.versions``), PyTorch's included."""
    from resnetkit.versions import versions as _versions

    return _versions()


def hardware() -> dict:
    from resnetkit.training.hardware import cpu_flags, cpu_has_native_bf16, cpu_name

    flags = cpu_flags()
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "isa": isa_tag(),
        "native_bf16": cpu_has_native_bf16(),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))),
    }


def isa_tag() -> str:
    """A short name for the vector instructions the measurements depend on."""
    from resnetkit.training.hardware import cpu_flags, cpu_has_native_bf16

    flags = cpu_flags()
    if cpu_has_native_bf16():  # AMX (Intel Sapphire Rapids on) is much faster than AVX512_BF16
        if "amx_bf16" in flags:
            return "amx"
        return "avx512bf16" if "avx512_bf16" in flags else "bf16"
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else platform.machine()


def peer_version(package: str) -> str | None:
    """The installed version of a peer library, None where it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return None
