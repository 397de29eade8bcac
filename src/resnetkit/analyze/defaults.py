"""The analyses' defaults, without TensorFlow: the degradation experiment's budget and the
gradient study's.

``analyze/degradation.py`` and ``analyze/gradients.py`` use these as their defaults and
``resnetkit analyze`` as its flags' defaults, so the two cannot differ and ``--help`` stays
fast.

The default budget, 625 steps (4,000 images, batch 64, 10 epochs), is sized for a small
CPU: 6 epochs were too few for ResNet-56 to catch up with ResNet-20; 10 show both of He et
al.'s claims.
"""

from __future__ import annotations

DEFAULT_MODELS = ("plain20", "plain56", "resnet20", "resnet56")
DEFAULT_DATA = "fashion-mnist"
DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 64
DEFAULT_TRAIN_SUBSET = 4000
DEFAULT_TEST_SUBSET = 2000
DEFAULT_LR = 0.1  # SGD rate for a batch of 128, scaled linearly with the batch size
DEFAULT_SEED = 0

# The gradient study: the deepest plain net against its residual twin, a short look.
GRADIENT_MODELS = ("plain56", "resnet56")
GRADIENT_STEPS = 100
GRADIENT_BATCH_SIZE = 128
