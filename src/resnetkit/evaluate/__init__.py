"""``resnetkit evaluate``: a trained model on labelled data (the metrics are the task's)."""

from resnetkit.evaluate.evaluation import evaluate_on_data

__all__ = ["evaluate_on_data"]
