"""Grad-CAM and Grad-CAM++: which region of an image made the network score a class.

Both weight the channels of one feature map by the gradient of the class score and keep
the positive part of the weighted sum (Selvaraju et al. 2017, "Grad-CAM"; Chattopadhay et
al. 2018, "Grad-CAM++"). The score is the class *logit*: a softmax probability saturates
near 1 and its gradient mixes in every other class. Trained resnetkit runs end in a
softmax Dense layer, so the logits are recomputed from that layer's input with its own
kernel and bias; a model that outputs logits is used as it is.

Feature maps are addressed by name (``model.feature_info``: ``stem``, ``stage1``, ...),
the default being the last stage: the most class-specific map that still has a grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from resnetkit.data.pipeline import normalize
from resnetkit.data.transforms import resize_center_crop
from resnetkit.explain.methods import METHODS
from resnetkit.names import closest_names, unknown_name_error
from resnetkit.tasks.classify.predictor import Classifier


@dataclass
class Explanation:
    """One image explained.

    ``heatmap``: (H, W) float32 in [0, 1] over the crop the network saw; 1 marks the
    strongest evidence for ``class_index``, 0 none. ``probability``: the network's
    probability for ``class_index``. ``image``: that crop as uint8 (resized and
    center-cropped, not normalized), so that the heatmap can be drawn over it.
    """

    heatmap: np.ndarray
    class_index: int
    probability: float
    predicted_index: int
    image: np.ndarray


def feature_layer(model: keras.Model, name: str | None = None) -> str:
    """The Keras layer name of feature map ``name`` (default: the last one listed in
    ``model.feature_info``, the last stage). A Keras layer name with a 4-D output is
    accepted too, for models without ``feature_info``."""
    info = getattr(model, "feature_info", None) or {}
    if name is None:
        if not info:
            raise ValueError(
                f"{model.name} has no named feature maps (feature_info); "
                "give the name of a Keras layer with a 4-D output"
            )
        return info[list(info)[-1]].layer
    if name in info:
        return info[name].layer
    if any(layer.name == name for layer in model.layers):
        shape = model.get_layer(name).output.shape
        if len(shape) == 4:
            return name
        raise ValueError(f"layer {name!r} has output shape {shape}; Grad-CAM needs a 4-D map")
    error = unknown_name_error("feature map", name, info)
    raise ValueError(f"{error} (or the name of a Keras layer with a 4-D output)")


class GradCam:
    """Grad-CAM of one model, feature map and method; reusable across batches.

    Building the gradient model is the slow part for deep networks, so ``explain`` and
    ``explain_files`` build it once and call ``maps`` per batch.
    """

    def __init__(self, model: keras.Model, layer: str | None = None, method: str = "gradcam"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        self.method = method
        self.layer = feature_layer(model, layer)  # the Keras layer
        info = getattr(model, "feature_info", None) or {}
        self.feature = layer or list(info)[-1]  # the name it was asked for
        self.num_classes = int(model.output_shape[-1])
        last = model.layers[-1]
        self._dense = last if isinstance(last, keras.layers.Dense) else None
        activation = getattr(getattr(last, "activation", None), "__name__", "")
        if self._dense is not None or activation == "softmax":
            head = last.input  # the pooled features, or the logits before a softmax layer
        elif isinstance(last, keras.layers.Softmax):
            head, activation = last.input, "softmax"
        else:
            head = model.output  # taken as logits
        self._sigmoid = activation == "sigmoid"
        self._model = keras.Model(model.input, [model.get_layer(self.layer).output, head])

    def _logits(self, head: tf.Tensor) -> tf.Tensor:
        if self._dense is None:
            return tf.cast(head, tf.float32)
        kernel = tf.cast(self._dense.kernel, tf.float32)
        z = tf.matmul(tf.cast(head, tf.float32), kernel)
        return z + tf.cast(self._dense.bias, tf.float32) if self._dense.use_bias else z

    def maps(
        self, x: tf.Tensor, targets: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A normalized batch → (maps at feature resolution (B, h, w) in [0, 1], the class
        explained per image, class probabilities (B, classes)). ``targets``: one class
        index per image; ``None`` explains the predicted class. One tape for the batch:
        each image's score depends on its own features only (inference mode), so the
        gradient of the summed scores gives every image its own gradient."""
        with tf.GradientTape() as tape:
            features, head = self._model(x, training=False)
            logits = self._logits(head)
            if targets is None:
                targets = tf.argmax(logits, axis=-1, output_type=tf.int32)
            scores = tf.gather(logits, tf.convert_to_tensor(targets, tf.int32), batch_dims=1)
        grads = tf.cast(tape.gradient(scores, features), tf.float32)
        features = tf.cast(features, tf.float32)
        if self.method == "gradcam":
            weights = tf.reduce_mean(grads, axis=(1, 2))
        else:
            # Grad-CAM++ closed form for an exponential score: the exp(S) factors cancel in
            # alpha and scale every weight of an image alike, which normalization removes.
            g2 = tf.square(grads)
            total = tf.reduce_sum(features, axis=(1, 2), keepdims=True)
            alpha = tf.math.divide_no_nan(g2, 2.0 * g2 + total * g2 * grads)
            weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2))
        cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", features, weights))
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        probs = tf.sigmoid(logits) if self._sigmoid else tf.nn.softmax(logits)
        return cam.numpy(), np.asarray(targets, np.int64), probs.numpy()


def explain(
    classifier: Classifier,
    images: Sequence[np.ndarray] | np.ndarray,
    *,
    layer: str | None = None,
    class_index: int | Sequence[int] | None = None,
    method: str = "gradcam",
    batch_size: int = 32,
) -> list[Explanation]:
    """Heatmaps of where each uint8 image holds the evidence for a class.

    ``class_index``: ``None`` explains each image's predicted class; an int the same class
    for all; a sequence one class per image. ``layer``: a ``feature_info`` name (default:
    the last stage). ``method``: ``"gradcam"`` or ``"gradcam++"``.
    """
    cam = GradCam(classifier.model, layer, method)
    targets = class_targets(class_index, len(images), cam.num_classes)
    out: list[Explanation] = []
    for start in range(0, len(images), batch_size):
        chunk = None if targets is None else targets[start : start + batch_size]
        out += explain_batch(cam, classifier, images[start : start + batch_size], chunk)
    return out


def explain_batch(
    cam: GradCam,
    classifier: Classifier,
    images: Sequence[np.ndarray] | np.ndarray,
    targets: np.ndarray | None = None,
) -> list[Explanation]:
    """``explain`` for one batch with a prepared ``GradCam``."""
    if len(images) == 0:
        return []
    crops = tf.stack([_crop(_checked(im, classifier.channels), classifier.prep) for im in images])
    maps, explained, probs = cam.maps(normalize(crops, classifier.prep), targets)
    size = crops.shape[1:3]
    heatmaps = tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
    peak = tf.reduce_max(heatmaps, axis=(1, 2), keepdims=True)
    heatmaps = tf.clip_by_value(tf.math.divide_no_nan(heatmaps, peak), 0.0, 1.0).numpy()
    return [
        Explanation(
            heatmap=heatmaps[i],
            class_index=int(explained[i]),
            probability=float(probs[i, explained[i]]),
            predicted_index=int(probs[i].argmax()),
            image=crops[i].numpy(),
        )
        for i in range(len(images))
    ]


def class_targets(
    class_index: int | Sequence[int] | None, count: int, num_classes: int
) -> np.ndarray | None:
    """``explain``'s ``class_index`` → one checked class index per image, or ``None``."""
    if class_index is None:
        return None
    if isinstance(class_index, bool):
        raise ValueError(f"class_index must be a class number; got {class_index!r}")
    many = not isinstance(class_index, (int, np.integer))
    targets = np.asarray(class_index if many else [class_index] * count)
    if many and targets.shape != (count,):
        raise ValueError(f"class_index: expected {count} class indices; got {targets.size}")
    if targets.size and not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"class_index must be integers; got {class_index!r}")
    bad = [int(t) for t in targets if not 0 <= t < num_classes]
    if bad:
        raise ValueError(f"class_index {bad[0]} out of range: the model has {num_classes} classes")
    return targets.astype(np.int32)


def class_index_by_name(class_names: Sequence[str], name: str) -> int:
    """The index of class ``name``; a ValueError names the nearest classes (and lists all
    of them when there are few enough to read)."""
    if name in class_names:
        return list(class_names).index(name)
    if len(class_names) <= 50:
        raise unknown_name_error("class", name, class_names)
    near = closest_names(name, class_names)
    hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
    raise ValueError(f"unknown class {name!r}.{hint} ({len(class_names)} classes in the class map)")


def _crop(image: np.ndarray, prep) -> tf.Tensor:
    """``resize_center_crop``, with the common case of an image whose shorter side already
    has the resize length done in NumPy (the same pixels, without per-image TF ops)."""
    height, width = image.shape[:2]
    if min(height, width) != prep.resize_size or prep.resize_size < prep.crop_size:
        return resize_center_crop(tf.convert_to_tensor(image), prep)
    top, left = (height - prep.crop_size) // 2, (width - prep.crop_size) // 2
    return tf.convert_to_tensor(image[top : top + prep.crop_size, left : left + prep.crop_size])


def _checked(image: np.ndarray, channels: int) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2 and channels == 1:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != channels:
        raise ValueError(
            f"expected (height, width, {channels}) uint8 images; "
            f"got shape {image.shape}, dtype {image.dtype}"
        )
    return image
