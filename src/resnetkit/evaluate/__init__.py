"""Evaluation: predictions over a data set, optionally with flip test-time augmentation."""

from resnetkit.evaluate.predict import predict_dataset, tta_metrics

__all__ = ["predict_dataset", "tta_metrics"]
