"""Loss functions ``fn(y_true, y_pred) -> tensor of loss values``, one per sample or position.

Each reduces over the last axis only (``dice_loss`` over every axis but the batch axis, one
value per image), as in Keras 2. The engine then applies Keras' rule for every loss: the
values are averaged over all axes after the batch axis, times the sample weights (one per
sample, or one per position such as ``(N, H, W)``), then over the batch
(``minidl.engine.compile_utils.reduce_weighted``); outputs of any rank train alike. The
cross-entropies leave numerical stability to the backend's ``K.*_crossentropy`` ops, which use
the logits when ``y_pred`` came from a sigmoid or softmax.

>>> from minidl import losses
>>> losses.get("mse").__name__, losses.get("categorical_crossentropy").__name__
('mean_squared_error', 'categorical_crossentropy')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minidl import backend as K
from minidl import losses_keras2
from minidl.losses_keras2 import (  # noqa: F401 - Keras 2 names: minidl.losses.hinge ...
    categorical_hinge,
    cosine_proximity,
    hinge,
    kullback_leibler_divergence,
    logcosh,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    poisson,
    squared_hinge,
)

LossFunction = Callable[[Any, Any], Any]


def _align_target(y_true: Any, y_pred: Any, loss_name: str) -> Any:
    """Cast ``y_true`` to ``y_pred``'s dtype and give ``(batch,)`` targets a trailing axis."""
    y_true = K.cast(y_true, K.dtype(y_pred))
    true_rank, pred_rank = K.ndim(y_true), K.ndim(y_pred)
    if true_rank == pred_rank - 1:
        y_true = K.expand_dims(y_true, -1)
    elif true_rank != pred_rank:
        raise ValueError(
            f"`{loss_name}` expects targets with the rank of the predictions ({pred_rank}). "
            f"Received: y_true of rank {true_rank} and y_pred of rank {pred_rank}."
        )
    return y_true


def _per_sample_mean(values: Any) -> Any:
    return K.mean(values, axis=-1) if K.ndim(values) > 1 else values


def mean_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Mean of ``(y_pred - y_true) ** 2`` over the last axis."""
    y_true = _align_target(y_true, y_pred, "mean_squared_error")
    return _per_sample_mean(K.square(y_pred - y_true))


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Mean of ``|y_pred - y_true|`` over the last axis."""
    y_true = _align_target(y_true, y_pred, "mean_absolute_error")
    return _per_sample_mean(K.abs(y_pred - y_true))


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> Any:
    """Mean binary cross-entropy over the last axis (``y_pred`` holds probabilities)."""
    y_true = _align_target(y_true, y_pred, "binary_crossentropy")
    return _per_sample_mean(K.binary_crossentropy(y_true, y_pred, from_logits=from_logits))


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> Any:
    """Cross-entropy between one-hot targets and class probabilities along the last axis."""
    if K.ndim(y_true) != K.ndim(y_pred):
        raise ValueError(
            "`categorical_crossentropy` expects one-hot targets shaped like the predictions; "
            "for integer class labels use `sparse_categorical_crossentropy`. Received: y_true "
            f"of rank {K.ndim(y_true)} and y_pred of rank {K.ndim(y_pred)}."
        )
    y_true = K.cast(y_true, K.dtype(y_pred))
    return K.categorical_crossentropy(y_true, y_pred, from_logits=from_logits)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> Any:
    """Cross-entropy between integer class labels and class probabilities."""
    return K.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits)


def _image_axes(x: Any) -> tuple[int, ...]:
    """Every axis but the batch axis."""
    return tuple(range(1, K.ndim(x)))


def overlap_sums(y_true: Any, y_pred: Any, loss_name: str) -> tuple[Any, Any, Any]:
    """Per-image ``sum(t * p)``, ``sum(t)`` and ``sum(p)`` over every axis but the batch axis."""
    y_true = _align_target(y_true, y_pred, loss_name)
    if K.ndim(y_pred) == 1:
        y_true, y_pred = K.expand_dims(y_true, -1), K.expand_dims(y_pred, -1)
    axes = _image_axes(y_pred)
    return K.sum(y_true * y_pred, axis=axes), K.sum(y_true, axis=axes), K.sum(y_pred, axis=axes)


DICE_SMOOTH = 1.0


def dice_loss(y_true: Any, y_pred: Any) -> Any:
    """Soft Dice loss per image: ``1 - (2 sum(t p) + 1) / (sum(t) + sum(p) + 1)``.

    Sums run over every axis but the batch axis (all pixels and channels of one image), so the
    result has shape ``(batch,)``; ``y_pred`` holds probabilities (e.g. after a sigmoid). The
    smoothing term 1 makes an empty mask predicted empty cost 0.
    """
    intersection, true_sum, pred_sum = overlap_sums(y_true, y_pred, "dice_loss")
    return 1.0 - (2.0 * intersection + DICE_SMOOTH) / (true_sum + pred_sum + DICE_SMOOTH)


LOSSES: dict[str, LossFunction] = {
    fn.__name__: fn
    for fn in (
        mean_squared_error,
        mean_absolute_error,
        binary_crossentropy,
        categorical_crossentropy,
        sparse_categorical_crossentropy,
        dice_loss,
        *losses_keras2.KERAS2_LOSSES,
    )
}
ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    **losses_keras2.KERAS2_ALIASES,
}


def get(identifier: str | LossFunction) -> LossFunction:
    """Return the loss function for a name (Keras aliases ``mse``/``mae`` too) or a callable.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        key = ALIASES.get(key, key)
        if key not in LOSSES:
            raise ValueError(
                f"Unknown loss {identifier!r}. Valid names: "
                f"{', '.join(sorted([*LOSSES, *ALIASES]))}. Received: loss={identifier!r}"
            )
        return LOSSES[key]
    if callable(identifier):
        return identifier
    raise TypeError(f"A loss must be a name or a callable. Received: loss={identifier!r}")


def serialize(loss: LossFunction) -> str:
    """Return the name under which ``get`` finds ``loss``."""
    name = getattr(loss, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot serialize loss {loss!r}: it has no __name__.")
    return name
