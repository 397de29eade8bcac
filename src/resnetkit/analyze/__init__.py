"""Why residual connections work, measured: gradient norms per layer and the degradation
experiment (He et al. 2016, Figure 6) — ``resnetkit analyze gradients|degradation``.

The names are loaded on first use, so that ``analyze.defaults`` (the CLI's defaults) can
be imported without TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "TestError": "resnetkit.analyze.degradation",
    "degradation_chart": "resnetkit.analyze.degradation",
    "degradation_config": "resnetkit.analyze.degradation",
    "format_degradation": "resnetkit.analyze.degradation",
    "run_degradation": "resnetkit.analyze.degradation",
    "format_gradients": "resnetkit.analyze.gradients",
    "gradient_chart": "resnetkit.analyze.gradients",
    "gradient_norms": "resnetkit.analyze.gradients",
    "kernel_variables": "resnetkit.analyze.gradients",
    "run_gradients": "resnetkit.analyze.gradients",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'resnetkit.analyze' has no attribute {name!r}")
