"""Why residual connections work, measured: gradient norms per layer and the degradation
experiment (He et al. 2016, Figure 6) — ``resnetkit analyze gradients|degradation``."""

from resnetkit.analyze.degradation import (
    TestError,
    degradation_chart,
    degradation_config,
    format_degradation,
    run_degradation,
)
from resnetkit.analyze.gradients import (
    format_gradients,
    gradient_chart,
    gradient_norms,
    kernel_variables,
    run_gradients,
)

__all__ = [
    "TestError",
    "degradation_chart",
    "degradation_config",
    "format_degradation",
    "format_gradients",
    "gradient_chart",
    "gradient_norms",
    "kernel_variables",
    "run_degradation",
    "run_gradients",
]
