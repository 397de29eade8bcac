"""The segmentation loss when the plain one is not enough: cross-entropy over the labelled
pixels (255 ignored) with optional per-class weights, plus an optional soft-Dice term.

Without class weights and Dice the task uses Keras' own
``SparseCategoricalCrossentropy(ignore_class=255)``; Keras has no per-pixel class weights
(``class_weight`` takes one label per example) and no Dice loss, hence this class.
"""

from __future__ import annotations

import keras
from keras import ops

from resnetkit.data.masks import IGNORE


@keras.saving.register_keras_serializable(package="resnetkit")
class SegmentationLoss(keras.losses.Loss):
    """``mean_w(CE) + dice_weight × (1 − mean soft Dice)`` over pixels whose label is not 255.

    The cross-entropy is a weighted mean (weights ``class_weights[label]``, divided by their
    sum, as PyTorch's weighted ``cross_entropy``); the Dice mean runs over the classes
    present in the batch's labels."""

    def __init__(
        self,
        num_classes: int,
        class_weights: list[float] | None = None,
        dice_weight: float = 0.0,
        name: str = "segmentation_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.dice_weight = float(dice_weight)
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} values for {num_classes} classes"
            )

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        valid = ops.cast(ops.not_equal(labels, IGNORE), "float32")
        safe = ops.where(ops.not_equal(labels, IGNORE), labels, 0)
        logits = ops.cast(y_pred, "float32")
        ce = keras.losses.sparse_categorical_crossentropy(safe, logits, from_logits=True)
        weights = valid
        if self.class_weights is not None:
            weights = weights * ops.take(ops.convert_to_tensor(self.class_weights), safe)
        loss = ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1e-6)
        if self.dice_weight:
            probs = ops.softmax(logits, axis=-1) * valid[..., None]
            truth = ops.one_hot(safe, self.num_classes) * valid[..., None]
            inter = ops.sum(probs * truth, axis=(0, 1, 2))
            sizes = ops.sum(probs, axis=(0, 1, 2)) + ops.sum(truth, axis=(0, 1, 2))
            dice = (2 * inter + 1.0) / (sizes + 1.0)
            present = ops.cast(ops.sum(truth, axis=(0, 1, 2)) > 0, "float32")
            mean_dice = ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)
            loss = loss + self.dice_weight * (1.0 - mean_dice)
        return loss

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes,
                "class_weights": self.class_weights, "dice_weight": self.dice_weight}  # fmt: skip
