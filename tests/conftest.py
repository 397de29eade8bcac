import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import importlib.util

# In the interop venv (PyTorch 2.14.1's CUDA build), triton's extension crashes when it is
# first loaded after TensorFlow; torch._dynamo loads it, so load that first.
if importlib.util.find_spec("torchvision") is not None:
    import torch._dynamo  # noqa: F401

import keras
import pytest


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
