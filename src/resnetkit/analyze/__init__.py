"""Why residual connections work, measured: gradient norms per layer and the degradation
experiment (He et al. 2016, Figure 6) — ``resnetkit analyze gradients|degradation``.

The names are loaded on first use, so that ``analyze.defaults`` (the CLI's defaults) can
be imported without TensorFlow.
"""

from __future__ import annotations

from resnetkit.lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _PUBLIC)
