"""The run engine as a user meets it: input decisions, saved models in a fresh process, one
fine-tuning path, and the package layering."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SRC = Path(__file__).parents[1] / "src" / "resnetkit"


def _imports(path: Path) -> set[str]:
    """resnetkit units (package or top-level module) that ``path`` imports, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "resnetkit" and len(parts) > 1:
                found.add(parts[1])
    return found


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        edges.setdefault(unit, set()).update(_imports(path) - {unit, "__init__"})

    def reaches(start: str, goal: str, seen: set[str]) -> list[str] | None:
        for nxt in sorted(edges.get(start, ())):
            if nxt == goal:
                return [start, nxt]
            if nxt not in seen:
                seen.add(nxt)
                path = reaches(nxt, goal, seen)
                if path:
                    return [start, *path]
        return None

    cycles = [" -> ".join(p) for u in sorted(edges) if (p := reaches(u, u, set()))]
    assert not cycles, f"import cycles: {cycles}"


def test_the_engine_does_not_reach_up_to_transfer_or_the_cli():
    """transfer/ uses training/, never the reverse; nothing below the CLI imports it."""
    for path in (SRC / "training").rglob("*.py"):
        assert not _imports(path) & {"transfer", "cli", "serve", "export", "analyze"}, path
    for path in SRC.rglob("*.py"):
        if _unit(path) != "cli":
            assert "cli" not in _imports(path), path


def test_run_file_names_are_spelled_only_by_rundir():
    names = {"summary.json", "config.yaml", "model.keras", "class_map.json", "metrics.jsonl"}
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and any(n in node.value for n in names)
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def _png_folder(root: Path, size: int = 28, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(("circle", "square")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size), dtype=np.uint8)
            pixels[8:20, 8:20] += np.uint8(120 + 60 * k)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i:03d}.png")
    return root


def test_a_folder_of_small_grey_pngs_trains_at_the_models_own_size(tmp_path, capsys):
    """resnet20 on 28×28 grey PNGs: 32×32×1 (its own input size, grey kept), mean/std
    measured on the images; not 224×224×3 with ImageNet statistics."""
    from resnetkit.cli import main
    from resnetkit.models import load_model

    data = _png_folder(tmp_path / "shapes")
    run = tmp_path / "run"
    args = ["train", "--model", "resnet20", "--data", str(data), "--epochs", "1"]
    code = main([*args, "--batch-size", "8", "--run-dir", str(run), "--set", "run.report=false"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "input 32×32×1" in printed and "resnet20's default input size 32" in printed
    assert "mostly 28×28 grey" in printed
    model = load_model(run / "model.keras")
    assert model.input_shape == (None, 32, 32, 1)
    inputs = json.loads((run / "summary.json").read_text())["inputs"]
    assert inputs["input_shape"] == [32, 32, 1]
    prep = inputs["preprocessing"]
    assert prep["crop_size"] == 32 and len(prep["mean"]) == 1
    # The images are dark with a bright square: nothing like ImageNet's mean of 0.485.
    assert 0.05 < prep["mean"][0] < 0.4


def test_an_imagenet_model_on_tiny_images_is_not_blown_up_to_224(tmp_path):
    from resnetkit.tasks.classify.inputs import model_size

    assert model_size("resnet50", 28)[0] == 32  # the images' own size, raised to the minimum
    assert model_size("resnet50", 150)[0] == 224  # at least half the default: the default
    assert model_size("resnet20", 28)[0] == 32
    assert model_size("resnet_tiny", 8)[0] == 8  # scikit-learn's digits stay 8×8
    assert model_size("resnet_tiny", 3)[0] == 8  # never under the model's minimum


def test_load_model_after_a_bare_import_in_a_fresh_process(digits_run):
    """``resnetkit.load_model`` works after ``import resnetkit`` alone; a plain Keras load
    without resnetkit's layers registered names the function to call."""
    model = digits_run / "model.keras"
    script = (
        "import resnetkit, numpy as np\n"
        f"m = resnetkit.load_model({str(model)!r})\n"
        "print(type(m).__name__, m.output_shape, m.preprocessing.crop_size)\n"
        f"run = resnetkit.load_model({str(digits_run)!r})\n"
        "print(run.count_params() == m.count_params())\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ResNet", "(None,", "10)", "8", "True"]
    plain = "import keras\nkeras.saving.load_model(" + repr(str(model)) + ")\n"
    out = subprocess.run(
        [sys.executable, "-c", plain], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode != 0
    assert "resnetkit.load_model(path)" in out.stderr


def test_load_model_names_the_file_at_fault(tmp_path):
    from resnetkit.models import load_model

    with pytest.raises(FileNotFoundError, match="model not found"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has not finished"):
        load_model(tmp_path / "run")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.keras: cannot be loaded"):
        load_model(bad)


def test_cli_finetune_and_the_python_api_produce_the_same_run(digits_run, tmp_path):
    """``resnetkit finetune --from RUN --data digits`` and
    ``finetune(finetune_config(RUN, overrides=...), run_dir)`` are one path."""
    from resnetkit.cli import main
    from resnetkit.models import load_model
    from resnetkit.transfer import finetune, finetune_config

    flags = ["--epochs", "2", "--batch-size", "64", "--deterministic"]
    cli = tmp_path / "cli"
    code = main(["finetune", "--from", str(digits_run), "--data", "digits", *flags,
                 "--run-dir", str(cli), "--set", "run.report=false"])  # fmt: skip
    assert code == 0
    items = [
        "data.source=digits",
        "schedule.epochs=2",
        "data.batch_size=64",
        "run.deterministic=true",
        "run.report=false",
    ]
    api = tmp_path / "api"
    summary = finetune(finetune_config(str(digits_run), overrides=items), api, stream=None)
    assert (cli / "config.yaml").read_text() == (api / "config.yaml").read_text()
    saved = json.loads((cli / "summary.json").read_text())
    assert saved["test_accuracy"] == summary["test_accuracy"]
    a, b = load_model(cli), load_model(api)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def test_training_refuses_a_finetune_config_and_names_the_path(tmp_path):
    from resnetkit.training.config import load_config
    from resnetkit.training.engine import train

    config = load_config(None, ["finetune.source=resnet18.tv_in1k", "data.source=digits"])
    with pytest.raises(ValueError, match=r"resnetkit\.transfer\.finetune"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
