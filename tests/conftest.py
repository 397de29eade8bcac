import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import importlib.util

# resnetkit sets its TensorFlow options (oneDNN kernels) on import, before TensorFlow loads:
# the suite then runs with the settings users get.
import resnetkit  # noqa: F401

# In the interop venv (PyTorch 2.14.1's CUDA build), triton's extension crashes when it is
# first loaded after TensorFlow; torch._dynamo loads it, so load that first.
if importlib.util.find_spec("torchvision") is not None:
    import torch._dynamo  # noqa: F401

import keras
import numpy as np
import pytest
from helpers import save
from PIL import Image


def pytest_addoption(parser):
    parser.addoption(
        "--regen-expected",
        action="store_true",
        help="rewrite tests/expected/*.npz from the current code instead of comparing",
    )


@pytest.fixture
def regen_expected(request) -> bool:
    return request.config.getoption("--regen-expected")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Free the previous test's models: the zoo tests build 100M-parameter networks."""
    yield
    keras.backend.clear_session()


@pytest.fixture
def broken(tmp_path):
    """A folder with every kind of bad file the issue lists, plus good images."""
    root = tmp_path / "broken"
    good = []
    for i in range(4):
        good.append(save(root / "cat" / f"good{i}.jpg", color=(10 * i, 20, 30)))
        good.append(save(root / "dog" / f"good{i}.png", mode="L", color=40 * i))
    good.append(save(root / "owl" / "only.bmp"))  # a class with one image
    (root / "empty_class").mkdir()
    (root / "cat" / "zero.jpg").write_bytes(b"")
    (root / "cat" / "notes.jpg").write_text("this is text, not a JPEG")
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    for ext, folder in (("jpg", "cat"), ("png", "dog")):
        noisy.save(tmp_path / f"noisy.{ext}")
        data = (tmp_path / f"noisy.{ext}").read_bytes()
        (root / folder / f"truncated.{ext}").write_bytes(data[: len(data) // 2])
    save(root / "dog" / "bomb.png", size=(2000, 2000), mode="L", color=0)
    os.symlink("loop.jpg", root / "dog" / "loop.jpg")  # a link to itself
    weird = os.path.join(os.fsencode(root / "cat"), b"caf\xe9.jpg")  # not UTF-8
    Image.new("RGB", (20, 20), (5, 5, 5)).save(os.fsdecode(weird), format="JPEG")
    good.append(os.fsdecode(weird))
    return root, sorted(map(str, good))


DIGITS_RUN = """
model: {name: resnet_tiny}
data: {source: digits, batch_size: 64, val_fraction: 0.0}
augment: {crop: none, flip: false}
optim: {lr: 0.4}
schedule: {name: cosine, epochs: 4}
"""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A finished training run (resnet_tiny on scikit-learn's digits, ~97% test accuracy,
    a few seconds). Tests may add files to it, not change what is there."""
    from resnetkit.training.config import load_config
    from resnetkit.training.engine import train

    path = tmp_path_factory.mktemp("digits-run") / "run"
    config = path.parent / "config.yaml"
    config.write_text(DIGITS_RUN)
    train(load_config(config), path)
    return path
