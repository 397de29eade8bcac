"""``resnetkit.seed``: the original article's ``residual_block`` and ``resnet_model``.

The code lives in ``resnetkit.models.seed``; this module gives it the short import path
``from resnetkit.seed import resnet_model``.
"""

from resnetkit.models.seed import residual_block, resnet_model

__all__ = ["residual_block", "resnet_model"]
