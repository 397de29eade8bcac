"""What every benchmark records beside its figures: library versions and hardware."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Callable
from pathlib import Path


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


def finetune_against_scratch(results: dict, *, model: str, counts: list[int], seeds: list[int],
                             data_for: Callable[[int, int], Path], common: list[str],
                             source: Path, run: Callable, work: Path, metric: str,
                             write: Callable[[dict], None]) -> None:  # fmt: skip
    """The grid the task benchmarks share: at each number of training scenes and seed,
    ``resnetkit train`` and ``resnetkit finetune --from source`` of ``model`` on the same
    data (``data_for(count, seed)``); each row appended to ``results["transfer"]`` and
    written, then the medians of ``metric`` in ``results["transfer_medians"]``."""
    for count in counts:
        for seed in seeds:
            data = data_for(count, seed)
            for kind in ("scratch", "finetune"):
                items = [f"model.name={model}", f"data.source={data}", f"run.seed={seed}",
                         *common]  # fmt: skip
                out = work / f"tr-{kind}-{count}-{seed}"
                row = {"kind": kind, "train_scenes": count, "seed": seed, "model": model,
                       **run(items, out, str(source) if kind == "finetune" else None)}  # fmt: skip
                results["transfer"].append(row)
                print(json.dumps(row), flush=True)
                write(results)
    medians = {}
    for row in results["transfer"]:
        medians.setdefault(f"{row['kind']} {row['train_scenes']}", []).append(row[metric])
    results["transfer_medians"] = {k: statistics.median(v) for k, v in medians.items()}
    write(results)
    print(json.dumps(results["transfer_medians"], indent=1))


def exported_scenes(exporter: Callable, out: Path, train: int, val: int, seed: int) -> Path:
    """``out``, written once by a ``resnetkit data export`` scene exporter (``export_scenes``,
    ``export_box_scenes``); a folder an interrupted export left is written again."""
    import io
    from contextlib import redirect_stdout

    if not (out / ".complete").exists():
        with redirect_stdout(io.StringIO()):
            exporter(out, train=train, val=val, seed=seed)
        (out / ".complete").touch()
    return out


def peer_versions() -> dict:
    """resnetkit's versions with the peers' of the speed benchmarks."""
    return {**versions(), "keras_hub": peer_version("keras_hub"),
            "torchvision": peer_version("torchvision")}  # fmt: skip


def write_report(report: dict, out: Path) -> None:
    """A speed benchmark's JSON, its summary printed."""
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    print(f"wrote {out}")
