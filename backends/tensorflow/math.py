"""Element-wise math, reductions and the matrix product on TensorFlow tensors.

Every op is a plain TensorFlow op, so it runs eagerly on constants and variables and
symbolically inside a step traced by ``function``. Python scalars mixed with a tensor take the
tensor's dtype (``checked_pair``/``like``); two tensors
must share a dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import check_same_dtype
from ._runtime import floatx, tf
from .variables import checked_pair, is_tensor, like, to_tensor

Axis = int | tuple[int, ...] | None

# ------------------------------------------------------------------- element-wise math


def nan_slope_at_nan(x: Any) -> Any:
    """``x`` unchanged, but its gradient is NaN where ``x`` is NaN (the interface's rule).

    A piecewise op's derivative has no value at NaN; TensorFlow's select-based gradients
    would pass the incoming gradient (or a 0) through there instead.
    """
    if not x.dtype.is_floating:
        return x
    return _nan_slope_identity(x)


@tf.custom_gradient
def _nan_slope_identity(x: Any) -> Any:
    # An identity forward (no extra per-element work); the gradient is NaN at NaN cells.
    def gradient(g: Any) -> Any:
        return tf.where(tf.math.is_nan(x), tf.stop_gradient(x), g)

    return tf.identity(x), gradient


def abs(x: Any) -> Any:  # noqa: A001
    """Element-wise absolute value (gradient ``sign(x)``)."""
    return tf.abs(to_tensor(x))


def sign(x: Any) -> Any:
    """Element-wise sign: -1, 0 or 1 (gradient zero)."""
    return tf.sign(to_tensor(x))


def square(x: Any) -> Any:
    """Element-wise ``x ** 2``."""
    return tf.square(to_tensor(x))


def sqrt(x: Any) -> Any:
    """Element-wise square root."""
    return tf.sqrt(to_tensor(x))


def exp(x: Any) -> Any:
    """Element-wise natural exponential."""
    return tf.exp(to_tensor(x))


def log(x: Any) -> Any:
    """Element-wise natural logarithm."""
    return tf.math.log(to_tensor(x))


def pow(x: Any, exponent: float) -> Any:  # noqa: A001
    """Element-wise ``x ** exponent`` for a Python scalar ``exponent``."""
    x = to_tensor(x)
    return tf.pow(x, like(exponent, x))


def maximum(x: Any, y: Any) -> Any:
    """Element-wise maximum with broadcasting (gradient goes to ``x`` on ties)."""
    x, y = (nan_slope_at_nan(v) for v in checked_pair("maximum", x, y))
    if not x.dtype.is_floating:
        return tf.maximum(x, y)
    # tf.maximum's gradient sends a NaN cell's gradient to the other operand
    return tf.where((x >= y) | tf.math.is_nan(x), x, y)


def minimum(x: Any, y: Any) -> Any:
    """Element-wise minimum with broadcasting (gradient goes to ``x`` on ties)."""
    x, y = (nan_slope_at_nan(v) for v in checked_pair("minimum", x, y))
    if not x.dtype.is_floating:
        return tf.minimum(x, y)
    return tf.where((x <= y) | tf.math.is_nan(x), x, y)


def clip(x: Any, min_value: float, max_value: float) -> Any:
    """Clip values to ``[min_value, max_value]``; gradient is zero outside the interval."""
    x = nan_slope_at_nan(to_tensor(x))
    return tf.clip_by_value(x, like(min_value, x), like(max_value, x))


def round(x: Any) -> Any:  # noqa: A001
    """Round half to even, element-wise (gradient zero)."""
    return tf.round(to_tensor(x))


def equal(x: Any, y: Any) -> Any:
    """Element-wise ``x == y`` as a boolean tensor (no gradient)."""
    return tf.equal(*checked_pair("equal", x, y))


def greater(x: Any, y: Any) -> Any:
    """Element-wise ``x > y`` as a boolean tensor (no gradient)."""
    return tf.greater(*checked_pair("greater", x, y))


def less(x: Any, y: Any) -> Any:
    """Element-wise ``x < y`` as a boolean tensor (no gradient)."""
    return tf.less(*checked_pair("less", x, y))


def where(condition: Any, x: Any, y: Any) -> Any:
    """Pick ``x`` where ``condition`` is true and ``y`` elsewhere, with broadcasting."""
    condition = to_tensor(condition)
    if condition.dtype != tf.bool:
        condition = tf.cast(condition, tf.bool)
    return tf.where(condition, *checked_pair("where", x, y))


# ------------------------------------------------------------------------- reductions


def _axis(axis: Axis) -> Any:
    if axis is None or isinstance(axis, int):
        return axis
    return list(axis)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple of ints, or None for all axes)."""
    return tf.reduce_sum(to_tensor(x), axis=_axis(axis), keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis``; the result keeps ``x``'s float dtype."""
    return tf.reduce_mean(to_tensor(x), axis=_axis(axis), keepdims=keepdims)


def _extreme(reduce: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    """``reduce`` (max or min) whose gradient is split between the tied extrema.

    A NaN outranks every number (NumPy's rule): only the NaN cells of a slice share its
    gradient (NaN, by ``nan_slope_at_nan``); tf's own gradient would give the slice 0 / 0.
    """
    x, axis = to_tensor(x), _axis(axis)
    if not x.dtype.is_floating:
        return reduce(x, axis=axis, keepdims=keepdims)

    @tf.custom_gradient
    def extreme(v: Any) -> Any:
        out = reduce(v, axis=axis, keepdims=True)

        def gradient(g: Any) -> Any:
            winners = tf.equal(v, out) | tf.math.is_nan(v)
            count = tf.reduce_sum(tf.cast(winners, v.dtype), axis=axis, keepdims=True)
            # a pick, not a product: the other cells get 0 even for an inf or NaN gradient
            return tf.where(winners, g / count, tf.zeros_like(v))

        return out, gradient

    out = extreme(nan_slope_at_nan(x))
    return out if keepdims else tf.reduce_sum(out, axis=axis)  # drops the size-1 axes


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis``; the gradient is split evenly between tied maxima."""
    return _extreme(tf.reduce_max, x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Minimum over ``axis``; the gradient is split evenly between tied minima."""
    return _extreme(tf.reduce_min, x, axis, keepdims)


def argmax(x: Any, axis: int = -1) -> Any:
    """Index of the largest value along ``axis`` as int64 (first one on ties; no gradient)."""
    x = to_tensor(x)
    index = tf.argmax(x, axis=axis, output_type=tf.int64)
    if not x.dtype.is_floating:
        return index
    # NumPy's argmax returns the first NaN; tf's skips NaN.
    nan = tf.math.is_nan(x)
    first_nan = tf.argmax(tf.cast(nan, tf.int8), axis=axis, output_type=tf.int64)
    return tf.where(tf.reduce_any(nan, axis=axis), first_nan, index)


# -------------------------------------------------------------------- linear algebra


def dot(x: Any, y: Any) -> Any:
    """Matrix product over the last axis of ``x`` and the first axis of a 2-D ``y``."""
    x, y = checked_pair("dot", x, y)
    if y.shape.rank != 2:
        raise ValueError(
            f"`dot` expects a 2-D second argument of shape (n, m). Received: y.shape={y.shape}"
        )
    rank = x.shape.rank
    if rank == 2:
        return tf.matmul(x, y)
    if rank == 1:
        return tf.squeeze(tf.matmul(x[None, :], y), axis=0)
    # (..., n) @ (n, m): fold the leading axes into one so TensorFlow runs one matmul.
    inner = y.shape[0]
    leading = tf.shape(x)[:-1]
    flat = tf.matmul(tf.reshape(x, (-1, inner)), y)
    out = tf.reshape(flat, tf.concat([leading, tf.shape(y)[1:]], axis=0))
    if not tf.executing_eagerly():
        out.set_shape(x.shape[:-1].concatenate(y.shape[1:]))
    return out


# ------------------------------------------------------------------------- shape ops


def reshape(x: Any, shape: tuple) -> Any:
    """Reshape to ``shape``, a tuple of ints where one entry may be -1."""
    return tf.reshape(to_tensor(x), [int(d) for d in shape])


def batch_flatten(x: Any) -> Any:
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""
    x = to_tensor(x)
    rest = x.shape[1:]
    if rest.is_fully_defined():
        return tf.reshape(x, (-1, math.prod(rest.as_list())))
    return tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute axes like ``numpy.transpose`` (reverse them when ``axes`` is None)."""
    return tf.transpose(to_tensor(x), perm=None if axes is None else list(axes))


def expand_dims(x: Any, axis: int = -1) -> Any:
    """Insert a length-1 axis at ``axis``."""
    return tf.expand_dims(to_tensor(x), axis)


def squeeze(x: Any, axis: int) -> Any:
    """Remove the length-1 axis ``axis``."""
    return tf.squeeze(to_tensor(x), axis=[axis])


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Any:
    """Join tensors along an existing axis."""
    dtypes = [t.dtype.name for t in tensors if is_tensor(t)]
    for dtype in dtypes[1:]:
        check_same_dtype("concatenate", dtypes[0], dtype)
    return tf.concat([to_tensor(t) for t in tensors], axis=axis)


def spatial_2d_padding(x: Any, padding: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """Zero-pad an NHWC tensor: ``((top, bottom), (left, right))``."""
    (top, bottom), (left, right) = padding
    return tf.pad(to_tensor(x), [[0, 0], [top, bottom], [left, right], [0, 0]])


def one_hot(indices: Any, num_classes: int) -> Any:
    """Integer tensor of shape ``s`` -> ``floatx()`` tensor of shape ``s + (num_classes,)``."""
    indices = to_tensor(indices)
    if indices.dtype not in (tf.int32, tf.int64, tf.uint8):
        indices = tf.cast(indices, tf.int64)
    return tf.one_hot(indices, int(num_classes), dtype=floatx())
