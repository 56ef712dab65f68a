"""Metrics ``fn(y_true, y_pred) -> per-sample tensor``; ``accuracy`` is resolved from the loss.

Like the losses, a metric may return one value per sample or per position (e.g. per pixel of
a ``(N, H, W, C)`` output); the engine averages it over every axis, then over the samples of
an epoch.

>>> from minidl import metrics
>>> metrics.get("accuracy", "binary_crossentropy").__name__
'binary_accuracy'
>>> metrics.get("acc", "sparse_categorical_crossentropy").__name__
'sparse_categorical_accuracy'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minidl import backend as K
from minidl import losses

MetricFunction = Callable[[Any, Any], Any]


def _as_float(boolean: Any) -> Any:
    return K.cast(boolean, K.floatx())


def binary_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Fraction of the last axis where ``y_pred > 0.5`` agrees with the 0/1 target."""
    y_true = losses._align_target(y_true, y_pred, "binary_accuracy")
    predicted = _as_float(K.greater(y_pred, 0.5))
    hits = _as_float(K.equal(K.cast(y_true, K.floatx()), predicted))
    return K.mean(hits, axis=-1) if K.ndim(hits) > 1 else hits


def categorical_accuracy(y_true: Any, y_pred: Any) -> Any:
    """1 where the arg-max of the one-hot target equals the arg-max of ``y_pred``, else 0."""
    return _as_float(K.equal(K.argmax(y_true, axis=-1), K.argmax(y_pred, axis=-1)))


def _class_labels(y_true: Any, y_pred: Any) -> Any:
    """Integer labels of rank ``ndim(y_pred) - 1`` (a trailing axis of 1 is dropped)."""
    if K.ndim(y_true) == K.ndim(y_pred):
        y_true = K.squeeze(y_true, -1)
    return K.cast(y_true, "int64")


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> Any:
    """1 where the integer label equals the arg-max of ``y_pred``, else 0."""
    return _as_float(K.equal(_class_labels(y_true, y_pred), K.argmax(y_pred, axis=-1)))


def _in_top_k(true_score: Any, y_pred: Any, k: int) -> Any:
    """1 where fewer than ``k`` classes score strictly higher than the true class."""
    higher = K.sum(_as_float(K.greater(y_pred, true_score)), axis=-1)
    return _as_float(K.less(higher, float(k)))


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> Any:
    """1 where the one-hot target's class is among the ``k`` highest scores, else 0."""
    true_score = K.sum(K.cast(y_true, K.dtype(y_pred)) * y_pred, axis=-1, keepdims=True)
    return _in_top_k(true_score, y_pred, k)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> Any:
    """1 where the integer label's class is among the ``k`` highest scores, else 0."""
    classes = K.int_shape(y_pred)[-1] if K.ndim(y_pred) else None
    one_hot = K.one_hot(_class_labels(y_true, y_pred), classes)
    true_score = K.sum(K.cast(one_hot, K.dtype(y_pred)) * y_pred, axis=-1, keepdims=True)
    return _in_top_k(true_score, y_pred, k)


OVERLAP_EPSILON = 1e-7


def dice_coefficient(y_true: Any, y_pred: Any) -> Any:
    """Dice ``2|T and P| / (|T| + |P|)`` per image, with ``P`` the pixels where ``y_pred > 0.5``.

    Counts run over every axis but the batch axis; an empty mask predicted empty scores 1.
    The training loop averages the per-image values.
    """
    predicted = _as_float(K.greater(y_pred, 0.5))
    intersection, true_sum, pred_sum = losses.overlap_sums(y_true, predicted, "dice_coefficient")
    return (2.0 * intersection + OVERLAP_EPSILON) / (true_sum + pred_sum + OVERLAP_EPSILON)


def iou(y_true: Any, y_pred: Any) -> Any:
    """Intersection over union (Jaccard) per image, with ``P`` the pixels where ``y_pred > 0.5``.

    Counts run over every axis but the batch axis; an empty mask predicted empty scores 1.
    """
    predicted = _as_float(K.greater(y_pred, 0.5))
    intersection, true_sum, pred_sum = losses.overlap_sums(y_true, predicted, "iou")
    union = true_sum + pred_sum - intersection
    return (intersection + OVERLAP_EPSILON) / (union + OVERLAP_EPSILON)


METRICS: dict[str, MetricFunction] = {
    fn.__name__: fn
    for fn in (
        binary_accuracy,
        categorical_accuracy,
        sparse_categorical_accuracy,
        top_k_categorical_accuracy,
        sparse_top_k_categorical_accuracy,
        dice_coefficient,
        iou,
        *losses.LOSSES.values(),
    )
}
ALIASES = {**losses.ALIASES, "dice": "dice_coefficient", "dice_coef": "dice_coefficient"}
ACCURACY_NAMES = ("accuracy", "acc")


def accuracy_for_loss(
    loss_name: str | None, output_shape: Sequence[int | None] | None = None
) -> MetricFunction:
    """Pick the accuracy that fits a loss, as Keras does.

    Binary accuracy for ``binary_crossentropy`` or a single output unit, sparse categorical for
    ``sparse_categorical_crossentropy``, categorical otherwise.
    """
    loss_name = losses.ALIASES.get(loss_name or "", loss_name)
    if loss_name == "binary_crossentropy":
        return binary_accuracy
    if loss_name == "sparse_categorical_crossentropy":
        return sparse_categorical_accuracy
    if output_shape is not None and len(output_shape) > 0 and output_shape[-1] == 1:
        return binary_accuracy
    return categorical_accuracy


def get(
    identifier: str | MetricFunction,
    loss_name: str | None = None,
    output_shape: Sequence[int | None] | None = None,
) -> MetricFunction:
    """Return the metric function for a name or callable; ``accuracy``/``acc`` follow the loss.

    Args:
        identifier: a metric name (or a loss name), or a callable returned unchanged.
        loss_name: the model's loss name, used to resolve ``"accuracy"``.
        output_shape: the model's output shape; a last axis of 1 means binary accuracy.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        if key in ACCURACY_NAMES:
            return accuracy_for_loss(loss_name, output_shape)
        key = ALIASES.get(key, key)
        if key not in METRICS:
            valid = sorted([*METRICS, *ALIASES, *ACCURACY_NAMES])
            raise ValueError(
                f"Unknown metric {identifier!r}. Valid names: {', '.join(valid)}. "
                f"Received: metric={identifier!r}"
            )
        return METRICS[key]
    if callable(identifier):
        return identifier
    raise TypeError(f"A metric must be a name or a callable. Received: metric={identifier!r}")
