"""`resnetkit data inspect` and `resnetkit data export`."""

import shutil

import numpy as np
import pytest
from helpers import LIMIT, save

from resnetkit.cli import main
from resnetkit.data import from_folder


def test_inspect_lists_every_bad_file_and_strict_fails(broken, capsys):
    root, _ = broken
    assert main(["data", "inspect", str(root), "--max-pixels", str(LIMIT)]) == 0
    out = capsys.readouterr().out
    for name, reason in [
        ("zero.jpg", "empty file"),
        ("notes.jpg", "not a readable image"),
        ("truncated.jpg", "cannot decode"),
        ("truncated.png", "truncated"),
        ("bomb.png", "too many pixels"),
        ("loop.jpg", "unreadable"),
    ]:
        line = next(x for x in out.splitlines() if x.strip().startswith(str(root)) and name in x)
        assert reason in line
    assert "bad files: 6" in out
    assert "problem:" in out and "empty_class" in out
    assert main(["data", "inspect", str(root), "--max-pixels", str(LIMIT), "--strict"]) == 1


def test_inspect_finds_duplicates_and_leakage(tmp_path, capsys):
    for split in ("train", "test"):
        for cls, color in (("a", (1, 2, 3)), ("b", (9, 9, 9))):
            for i in range(3):
                save(
                    tmp_path / split / cls / f"{i}.png",
                    color=(color[0] + i, color[1], color[2] + 10 * (split == "test")),
                )
    shutil.copy(tmp_path / "train" / "a" / "0.png", tmp_path / "train" / "a" / "copy.png")
    shutil.copy(tmp_path / "train" / "b" / "1.png", tmp_path / "test" / "b" / "leak.png")
    for i in range(12):
        save(tmp_path / "train" / "a" / f"more{i}.png", color=(100 + i, 0, 0))
    assert main(["data", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "exact duplicates within a split: 1 groups" in out and "copy.png" in out
    assert "duplicates across splits (leakage): 1 groups" in out and "leak.png" in out
    assert "warning: class imbalance" in out
    assert main(["data", "inspect", str(tmp_path), "--strict"]) == 1


def test_export_digits_as_a_folder(tmp_path, capsys):
    assert main(["data", "export", "digits", str(tmp_path / "digits")]) == 0
    assert "10 classes" in capsys.readouterr().out
    source = from_folder(tmp_path / "digits", val_fraction=0)
    assert source.class_names == [str(d) for d in range(10)]
    assert len(source.splits["train"]) + len(source.splits["test"]) == 1797
    assert not source.bad
    assert main(["data", "export", "digits", str(tmp_path / "digits")]) == 2  # never overwrites
    assert "not empty" in capsys.readouterr().err


def test_unknown_data_set_name_is_named(capsys):
    assert main(["data", "inspect", "fashion-mnst"]) == 2
    assert "'fashion-mnist'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["fashion-mnist"])
def test_inspect_a_standard_set(name, capsys):
    assert main(["data", "inspect", name]) == 0
    out = capsys.readouterr().out
    assert "total          60,000    10,000" in out and "28×28: 70,000" in out


def test_inspect_finds_duplicates_in_arrays():
    from resnetkit.data import from_arrays
    from resnetkit.data.inspect import inspect_source

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 255, (6, 8, 8), np.uint8)
    x_train[3] = x_train[0]  # duplicate within train
    x_test = rng.integers(0, 255, (2, 8, 8), np.uint8)
    x_test[1] = x_train[5]  # leaks into test
    labels = np.array([0, 1, 0, 1, 0, 1])
    source = from_arrays(
        "x", ["a", "b"], (x_train, labels), (x_test, np.array([0, 1])), val_fraction=0
    )
    report = inspect_source(source)
    assert report.duplicates == [["train[0]", "train[3]"]]
    assert report.leaks == [["train[5]", "test[1]"]]
    assert report.sizes == {(8, 8): 8} and report.modes == {"L": 8}


def test_export_without_network_says_where_to_put_the_archive(tmp_path, monkeypatch, capsys):
    import socket

    from resnetkit.data import standard
    from resnetkit.download import FileRef

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RESNETKIT_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
    monkeypatch.setitem(standard.CIFAR, "cifar10", FileRef(url, "0" * 32, "md5"))
    assert main(["data", "export", "cifar10", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert url in err and str(tmp_path / "cache" / "data" / "cifar10") in err
    assert not (tmp_path / "out").exists()
