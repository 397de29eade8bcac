"""What the command line costs and prints before its own output: no TensorFlow for
``--help``, and none of TensorFlow's start-up chatter unless asked for (``-v``)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from resnetkit.cli import logs

HEAVY = ("tensorflow", "keras")
# What importing TensorFlow prints on its own (see resnetkit/cli/logs.py).
CHATTER = (
    "oneDNN custom operations are on",
    "All log messages before absl::InitializeLog()",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


def _env(**extra: str) -> dict[str, str]:
    """This environment, without a TF_CPP_MIN_LOG_LEVEL of the user's (conftest sets one)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "CUDA_VISIBLE_DEVICES": "", **extra}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )


# The last line a snippet prints: which of HEAVY the process has imported.
LOADED = (
    "print('LOADED', json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
    f"{set(HEAVY)!r})))"
)


def _loaded(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("LOADED ")]
    return json.loads(line.removeprefix("LOADED "))


def test_building_the_parser_imports_no_tensorflow():
    done = _run(
        f"import json, sys\nfrom resnetkit.cli import build_parser\nbuild_parser()\n{LOADED}"
    )
    assert _loaded(done) == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["finetune", "--help"], ["models", "--format", "json"]],
    ids=" ".join,
)
def test_help_and_the_zoo_table_import_no_tensorflow(argv):
    code = (
        "import json, sys\nfrom resnetkit.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n{LOADED}"
    )
    assert _loaded(_run(code)) == []


def _summary(*flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "resnetkit.cli", *flags, "summary", "resnet_tiny"]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)


def test_a_command_prints_no_tensorflow_chatter_unless_verbose():
    quiet = _summary()
    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if any(c in line for c in CHATTER)]
    assert "resnet_tiny: input (32, 32, 3)" in quiet.stdout
    verbose = _summary("-v")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == quiet.stdout
    assert set(quiet.stderr.splitlines()) <= set(verbose.stderr.splitlines())
    if sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64"):
        assert "oneDNN custom operations are on" in verbose.stderr  # resnetkit turns it on


@pytest.mark.parametrize(
    ("line", "level", "dropped"),
    [
        ("WARNING: All log messages before absl::InitializeLog() is called are …\n", 1, True),
        ("WARNING: All log messages before absl::InitializeLog() is called are …\n", 0, False),
        ("I0000 00:00:1796191638.180993    4512 port.cc:153] oneDNN custom …\n", 1, True),
        ("I0000 00:00:1796191638.180993    4512 port.cc:153] oneDNN custom …\n", 0, False),
        ("W0000 00:00:1796191638.180993    4512 some.cc:12] a warning\n", 1, False),
        ("W0000 00:00:1796191638.180993    4512 some.cc:12] a warning\n", 2, True),
        ("E0000 00:00:1796191638.180993    4512 some.cc:12] an error\n", 2, False),
        ("I1203 06:07:37.123456    4512 port.cc:153] a later record\n", 2, True),
        ("Traceback (most recent call last):\n", 3, False),
        ("resnetkit summary: error: unknown model\n", 3, False),
    ],
)
def test_only_abseil_lines_below_the_level_are_chatter(line, level, dropped):
    assert logs.is_chatter(line, level) is dropped


def test_filtered_stderr_drops_chatter_written_to_the_descriptor_and_keeps_the_rest(capfd):
    with logs.filtered_stderr(2):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called\n")
        os.write(2, b"I0000 00:00:1.5    7 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1.5    7 x.cc:1] a real error\n")
        print("from Python", file=sys.stderr)
    err = capfd.readouterr().err
    # (pytest holds sys.stderr apart from descriptor 2, so the order is not kept here)
    assert sorted(err.splitlines()) == ["E0000 00:00:1.5    7 x.cc:1] a real error", "from Python"]


def test_the_user_s_level_is_kept_and_verbose_shows_everything(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # no import filter left here
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    logs.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    logs.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == str(logs.QUIET_LEVEL)
    logs.quiet_tensorflow(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
