"""resnetkit: build, train, fine-tune, explain and export ResNets on Keras 3.

The public names are loaded on first use, so that ``import resnetkit`` (and
``resnetkit --help``) does not pay for importing TensorFlow until a model is needed.
"""

from __future__ import annotations

import os

from resnetkit.lazy import lazy_exports

# Keras 3 picks its backend at import time; resnetkit runs on TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX512-VNNI, AVX512-BF16
# or AMX; elsewhere (AVX2-only CPUs) it runs Eigen's, which trained these convnets markedly
# slower (benchmarks/speed.py records by how much), so resnetkit asks for oneDNN unless the
# user has chosen. TensorFlow reads this once, when it is first imported: import resnetkit
# before tensorflow/keras for it to apply (the CLI does).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

_PUBLIC = {
    "ResNet": "resnetkit.models",
    "count_macs": "resnetkit.models",
    "count_params": "resnetkit.models",
    "create_model": "resnetkit.weights",
    "load_model": "resnetkit.tasks",
    "get_variant": "resnetkit.models",
    "list_models": "resnetkit.models",
}

__all__ = ["__version__", *_PUBLIC]

__getattr__ = lazy_exports(__name__, _PUBLIC)
