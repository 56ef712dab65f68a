"""The rest of Keras 2's losses: percentage and log errors, hinge losses, log-cosh,
Kullback-Leibler divergence, Poisson and cosine proximity (Keras 2.2.4's formulas).

Each returns one value per sample (or position), reduced over the last axis like
``minidl.losses``; ``EPSILON`` is Keras' ``K.epsilon()``.

>>> from minidl import losses
>>> losses.get("mape").__name__, losses.get("kld").__name__
('mean_absolute_percentage_error', 'kullback_leibler_divergence')
"""

from __future__ import annotations

import math
from typing import Any

from minidl import backend as K

EPSILON = 1e-7


def _aligned(y_true: Any, y_pred: Any, name: str) -> Any:
    from minidl.losses import _align_target

    return _align_target(y_true, y_pred, name)


def _last_axis_mean(values: Any) -> Any:
    return K.mean(values, axis=-1) if K.ndim(values) > 1 else values


def _last_axis_sum(values: Any) -> Any:
    return K.sum(values, axis=-1) if K.ndim(values) > 1 else values


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Any:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, eps))``."""
    y_true = _aligned(y_true, y_pred, "mean_absolute_percentage_error")
    diff = K.abs(y_true - y_pred) / K.maximum(K.abs(y_true), EPSILON)
    return 100.0 * _last_axis_mean(diff)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Any:
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)) ** 2)``."""
    y_true = _aligned(y_true, y_pred, "mean_squared_logarithmic_error")
    first = K.log(K.maximum(y_pred, EPSILON) + 1.0)
    second = K.log(K.maximum(y_true, EPSILON) + 1.0)
    return _last_axis_mean(K.square(first - second))


def squared_hinge(y_true: Any, y_pred: Any) -> Any:
    """``mean(max(1 - y_true * y_pred, 0) ** 2)`` for targets in {-1, 1}."""
    y_true = _aligned(y_true, y_pred, "squared_hinge")
    return _last_axis_mean(K.square(K.maximum(1.0 - y_true * y_pred, 0.0)))


def hinge(y_true: Any, y_pred: Any) -> Any:
    """``mean(max(1 - y_true * y_pred, 0))`` for targets in {-1, 1}."""
    y_true = _aligned(y_true, y_pred, "hinge")
    return _last_axis_mean(K.maximum(1.0 - y_true * y_pred, 0.0))


def categorical_hinge(y_true: Any, y_pred: Any) -> Any:
    """``max(0, max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1)`` for one-hot targets."""
    y_true = _aligned(y_true, y_pred, "categorical_hinge")
    positive = K.sum(y_true * y_pred, axis=-1)
    negative = K.max((1.0 - y_true) * y_pred, axis=-1)
    return K.maximum(negative - positive + 1.0, 0.0)


def logcosh(y_true: Any, y_pred: Any) -> Any:
    """``mean(log(cosh(y_pred - y_true)))``, computed as ``x + softplus(-2x) - log 2``."""
    y_true = _aligned(y_true, y_pred, "logcosh")
    x = y_pred - y_true
    return _last_axis_mean(x + K.softplus(-2.0 * x) - math.log(2.0))


def kullback_leibler_divergence(y_true: Any, y_pred: Any) -> Any:
    """``sum(t * log(t / p))`` with both clipped to ``[eps, 1]``."""
    y_true = K.clip(_aligned(y_true, y_pred, "kullback_leibler_divergence"), EPSILON, 1.0)
    y_pred = K.clip(y_pred, EPSILON, 1.0)
    return _last_axis_sum(y_true * K.log(y_true / y_pred))


def poisson(y_true: Any, y_pred: Any) -> Any:
    """``mean(y_pred - y_true * log(y_pred + eps))``."""
    y_true = _aligned(y_true, y_pred, "poisson")
    return _last_axis_mean(y_pred - y_true * K.log(y_pred + EPSILON))


def _l2_normalize(x: Any) -> Any:
    return x / K.sqrt(K.maximum(K.sum(K.square(x), axis=-1, keepdims=True), EPSILON))


def cosine_proximity(y_true: Any, y_pred: Any) -> Any:
    """``-sum(normalize(y_true) * normalize(y_pred))`` over the last axis (Keras 2.2.4)."""
    y_true = _aligned(y_true, y_pred, "cosine_proximity")
    return -K.sum(_l2_normalize(y_true) * _l2_normalize(y_pred), axis=-1)


KERAS2_LOSSES = (
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    squared_hinge,
    hinge,
    categorical_hinge,
    logcosh,
    kullback_leibler_divergence,
    poisson,
    cosine_proximity,
)
KERAS2_ALIASES = {
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kullback_leibler_divergence",
    "cosine": "cosine_proximity",
}
