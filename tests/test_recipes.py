"""The shipped recipes: valid configs that say what they are, found by name from the source tree
and from an installed wheel, listed by ``resnetkit recipes`` and run by ``--recipe NAME``."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resnetkit.cli import main
from resnetkit.recipes import list_recipes, recipe_names, recipe_path
from resnetkit.training.config import load_config

ROOT = Path(__file__).parents[1]
PACKAGE_DIR = ROOT / "src" / "resnetkit" / "recipes"
SHIPPED = ("cifar10_he2015", "fashion_mnist_best", "fashion_mnist_fast", "imagenet_resnet50")


def test_the_four_recipes_are_shipped_sorted():
    assert [r.name for r in list_recipes()] == list(SHIPPED) == recipe_names()


@pytest.mark.parametrize("recipe", list_recipes(), ids=lambda r: r.name)
def test_every_recipe_is_a_config_that_says_what_it_is_and_runs_itself(recipe):
    load_config(recipe.path)  # the recipe: mapping is dropped, the rest is checked
    assert recipe.summary and recipe.command and recipe.result
    words = shlex.split(recipe.command)
    assert words[:2] == ["resnetkit", "train"]
    assert words[words.index("--recipe") + 1] == recipe.name


def test_configs_in_the_repository_is_the_package_s_recipe_folder():
    configs = ROOT / "configs"
    assert configs.is_symlink()
    assert os.readlink(configs) == "src/resnetkit/recipes"  # relative: works in any checkout
    assert configs.resolve() == PACKAGE_DIR.resolve()
    assert (
        recipe_path("fashion_mnist_fast").resolve()
        == (configs / "fashion_mnist_fast.yaml").resolve()
    )


def test_a_name_may_end_in_yaml():
    assert recipe_path("fashion_mnist_best.yaml") == recipe_path("fashion_mnist_best")


def test_an_unknown_recipe_names_the_closest_and_all_the_others():
    with pytest.raises(ValueError, match="unknown recipe 'fashion_mnist_fats'") as e:
        recipe_path("fashion_mnist_fats")
    assert "Did you mean 'fashion_mnist_fast'" in str(e.value)
    assert all(name in str(e.value) for name in SHIPPED)


# --- the CLI -------------------------------------------------------------------------------

training = importlib.import_module("resnetkit.training.engine")
transfer = importlib.import_module("resnetkit.transfer.finetune")


@pytest.fixture
def calls(monkeypatch):
    """Every call of train() and finetune(), as (function, config): nothing trains."""
    seen = []

    def recorder(name):
        def record(config, run_dir=None, *, resume=False, **_):
            seen.append((name, config))
            return {}

        return record

    monkeypatch.setattr(training, "train", recorder("train"))
    monkeypatch.setattr(transfer, "finetune", recorder("finetune"))
    return seen


def test_train_recipe_is_config_of_the_recipe_file_with_flags_over_it(calls, tmp_path):
    run = str(tmp_path / "run")
    assert main(["train", "--recipe", "fashion_mnist_fast", "--epochs", "2", "--run-dir", run]) == 0
    ((name, config),) = calls
    expected = load_config(recipe_path("fashion_mnist_fast"), ["schedule.epochs=2"])
    assert name == "train"
    assert config == expected
    assert (config.model.name, config.schedule.budget_minutes) == ("resnet8_fast", 9.0)


def test_finetune_takes_a_recipe_too(calls, tmp_path):
    run = str(tmp_path / "run")
    argv = ["finetune", "--recipe", "fashion_mnist_fast", "--from", "resnet18.tv_in1k"]
    assert main([*argv, "--run-dir", run]) == 0
    ((name, config),) = calls
    assert name == "finetune"
    assert (config.data.source, config.finetune.source) == ("fashion-mnist", "resnet18.tv_in1k")


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_recipe_and_config_together_is_an_error_naming_both(calls, capsys, command, tmp_path):
    argv = [command, "--recipe", "fashion_mnist_fast", "--config", str(tmp_path / "x.yaml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--recipe" in err and "--config" in err
    assert calls == []


def test_an_unknown_recipe_on_the_command_line_suggests_the_closest(calls, capsys):
    assert main(["train", "--recipe", "fashion_mnist_bets"]) == 2
    assert "Did you mean 'fashion_mnist_best'" in capsys.readouterr().err
    assert calls == []


def test_resume_refuses_a_recipe(calls, capsys, tmp_path):
    assert main(["train", "--resume", str(tmp_path), "--recipe", "fashion_mnist_fast"]) == 2
    assert "--resume takes the run's own saved config" in capsys.readouterr().err
    assert calls == []


def _loaded_after(code: str) -> tuple[str, list[str]]:
    """What ``code`` prints, and which of TensorFlow, Keras and NumPy it left imported."""
    heavy = {"tensorflow", "keras", "numpy"}
    loaded = f"sorted({{m.split('.')[0] for m in sys.modules}} & {heavy})"
    probe = f"import json, sys\n{code}\nprint(json.dumps({loaded}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    *out, loaded = done.stdout.splitlines()
    return "\n".join(out), json.loads(loaded)


def test_the_recipes_module_imports_only_the_standard_library_and_yaml():
    assert _loaded_after("import resnetkit.recipes; resnetkit.recipes.list_recipes()")[1] == []


def test_resnetkit_recipes_lists_every_recipe_without_tensorflow():
    out, loaded = _loaded_after("from resnetkit.cli import main\nmain(['recipes'])")
    assert "tensorflow" not in loaded and "keras" not in loaded
    for recipe in list_recipes():
        assert re.search(rf"^{recipe.name} +{re.escape(recipe.summary)}$", out, re.M)
        assert recipe.command in out and recipe.result in out


# --- an installed, non-editable package --------------------------------------------------


def test_a_recipe_is_found_by_name_in_an_installed_wheel(tmp_path):
    """Build a wheel of this project, install it into a folder, and find the recipes there
    from a process that cannot see the repository's src/ (the venv's editable install is
    behind PYTHONPATH)."""
    project = tmp_path / "project"  # a copy: the build writes build/ and *.egg-info beside it
    shutil.copytree(
        ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    offline = ["--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run([*pip, "wheel", *offline, "-w", tmp_path / "dist", project], check=True)
    (wheel,) = (tmp_path / "dist").glob("resnetkit-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", site, wheel], check=True
    )

    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import json, resnetkit\nfrom resnetkit.recipes import list_recipes, recipe_path\n"
        "print(json.dumps({'package': resnetkit.__file__, "
        "'path': str(recipe_path('fashion_mnist_fast')), "
        "'names': [r.name for r in list_recipes()]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(done.stdout.splitlines()[-1])
    assert Path(found["package"]).is_relative_to(site)
    assert Path(found["path"]) == site / "resnetkit" / "recipes" / "fashion_mnist_fast.yaml"
    assert Path(found["path"]).is_file()
    assert found["names"] == list(SHIPPED)

    listed = subprocess.run(
        [sys.executable, "-m", "resnetkit.cli", "recipes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert all(name in listed.stdout for name in SHIPPED)
    assert f"files: {site / 'resnetkit' / 'recipes'}" in listed.stdout
