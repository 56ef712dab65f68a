"""Element-wise math, reductions, shape ops and ``dot`` on PyTensor tensors."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.tensor.math import Max

from minidl.backends.errors import check_same_dtype
from minidl.backends.theano import settings
from minidl.backends.theano.variables import _FLOATX, Axis, Shape, _pair, as_tensor

# ------------------------------------------------------------------- element-wise math


def abs(x: Any) -> Any:  # noqa: A001
    """Element-wise absolute value (gradient ``sign(x)``)."""
    return pt.abs(as_tensor(x))


def sign(x: Any) -> Any:
    """Element-wise sign: -1, 0 or 1 (gradient zero)."""
    return pt.sign(as_tensor(x))


def square(x: Any) -> Any:
    """Element-wise ``x ** 2``."""
    return pt.sqr(as_tensor(x))


def sqrt(x: Any) -> Any:
    """Element-wise square root."""
    return pt.sqrt(as_tensor(x))


def exp(x: Any) -> Any:
    """Element-wise natural exponential."""
    return pt.exp(as_tensor(x))


def log(x: Any) -> Any:
    """Element-wise natural logarithm."""
    return pt.log(as_tensor(x))


def pow(x: Any, exponent: float) -> Any:  # noqa: A001
    """Element-wise ``x ** exponent`` for a Python scalar ``exponent``."""
    x = as_tensor(x)
    return pt.pow(x, as_tensor(exponent, like=x))


class NanSlopeAtNan(Op):
    """Passes ``x`` on; its gradient is ``switch(isnan(x), x, g)``: NaN at NaN cells.

    An Op rather than ``x * disconnected_grad(switch(isnan(x), x, 1))``: PyTensor's rewrites
    turn ``switch(c, 0, g) * s`` into ``switch(c, 0, g * s)``, which drops that NaN.
    """

    __props__ = ()
    view_map = {0: [0]}  # noqa: RUF012 (PyTensor reads it from the class)

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        outputs[0][0] = inputs[0]

    def infer_shape(self, fgraph: Any, node: Apply, shapes: list) -> list:
        return shapes

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        (x,), (g,) = inputs, output_grads
        return [pt.switch(pt.isnan(x), x, g)]


_nan_slope_at_nan = NanSlopeAtNan()


def nan_slope_at_nan(x: Any) -> Any:
    """``x`` unchanged, but its gradient is NaN where ``x`` is NaN (the interface's rule).

    A piecewise op's derivative has no value at NaN; a ``switch``'s gradient would pass the
    incoming gradient (or a 0) through there instead.
    """
    if not x.dtype.startswith("float"):
        return x
    if settings.mode_name() not in ("NUMBA", "JAX"):
        return _nan_slope_at_nan(x)
    # NUMBA and JAX compile no Python Op; there the rewrite above may drop the NaN
    one = np.asarray(1, dtype=x.dtype)
    return x * disconnected_grad(pt.switch(pt.isnan(x), x, one))


def maximum(x: Any, y: Any) -> Any:
    """Element-wise maximum with broadcasting (gradient goes to ``x`` on ties)."""
    x, y = (nan_slope_at_nan(v) for v in _pair("maximum", x, y))
    return pt.switch(pt.ge(x, y) | pt.isnan(x), x, y)  # NaN in either input gives NaN


def minimum(x: Any, y: Any) -> Any:
    """Element-wise minimum with broadcasting (gradient goes to ``x`` on ties)."""
    x, y = (nan_slope_at_nan(v) for v in _pair("minimum", x, y))
    return pt.switch(pt.le(x, y) | pt.isnan(x), x, y)  # NaN in either input gives NaN


def clip(x: Any, min_value: float, max_value: float) -> Any:
    """Clip values to ``[min_value, max_value]``; gradient is zero outside the interval."""
    x = nan_slope_at_nan(as_tensor(x))
    return pt.clip(x, as_tensor(min_value, like=x), as_tensor(max_value, like=x))


def round(x: Any) -> Any:  # noqa: A001
    """Round half to even, element-wise (gradient zero)."""
    return pt.round(as_tensor(x), mode="half_to_even")


def equal(x: Any, y: Any) -> Any:
    """Element-wise ``x == y`` as a boolean tensor (no gradient)."""
    return pt.eq(*_pair("equal", x, y))


def greater(x: Any, y: Any) -> Any:
    """Element-wise ``x > y`` as a boolean tensor (no gradient)."""
    return pt.gt(*_pair("greater", x, y))


def less(x: Any, y: Any) -> Any:
    """Element-wise ``x < y`` as a boolean tensor (no gradient)."""
    return pt.lt(*_pair("less", x, y))


def where(condition: Any, x: Any, y: Any) -> Any:
    """Pick ``x`` where ``condition`` is true and ``y`` elsewhere, with broadcasting."""
    x, y = _pair("where", x, y)
    return pt.switch(as_tensor(condition), x, y)


# ------------------------------------------------------------------------- reductions


def _axes(x: Any, axis: Axis) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % x.ndim if x.ndim else a for a in axes)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple of ints, or None for all axes)."""
    x = as_tensor(x)
    return pt.sum(x, axis=_axes(x, axis), keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis``; the result keeps ``x``'s float dtype."""
    x = as_tensor(x)
    result = pt.mean(x, axis=_axes(x, axis), keepdims=keepdims)
    return result if x.dtype.startswith("float") else pt.cast(result, _FLOATX)


class EvenSplitMax(Max):
    """PyTensor's ``Max`` whose gradient is shared evenly between tied maxima."""

    def pullback(self, inputs, outputs, output_grads):
        """Send the output gradient to the maxima, divided by how many tie."""
        [x] = inputs
        [out] = outputs
        [g_out] = output_grads
        axis = tuple(range(x.ndim)) if self.axis is None else self.axis
        # a NaN outranks every number (NumPy's max): only the NaN cells share a NaN result
        winners = pt.eq(pt.expand_dims(out, axis), x)
        if x.dtype.startswith("float"):
            winners = winners | pt.isnan(x)
        winners = self._chosen(winners, axis)
        count = pt.sum(pt.cast(winners, g_out.dtype), axis=axis, keepdims=True)
        # a pick, not a product: the other cells get 0 even for an inf or NaN gradient
        zero = np.asarray(0, dtype=g_out.dtype)
        return (pt.switch(winners, pt.expand_dims(g_out, axis) / count, zero),)

    def _chosen(self, winners: Any, axis: tuple) -> Any:
        return winners


class FirstMax(EvenSplitMax):
    """PyTensor's ``Max`` whose gradient goes to the row-major first maximum (max-pooling)."""

    def _chosen(self, winners: Any, axis: tuple) -> Any:
        rest = [d for d in range(winners.ndim) if d not in axis]
        order = rest + list(axis)
        moved = winners.transpose(order)
        flat = pt.reshape(moved, [moved.shape[i] for i in range(len(rest))] + [-1])
        first = flat & pt.eq(pt.cumsum(pt.cast(flat, "int64"), axis=-1), 1)
        return pt.reshape(first, moved.shape).transpose(np.argsort(order).tolist())


def _max(x: Any, axis: Axis, keepdims: bool) -> Any:
    axes = _axes(x, axis)
    axes = axes if axes is None else tuple(sorted(set(axes)))
    result = EvenSplitMax(axes)(nan_slope_at_nan(x))
    if keepdims:
        result = pt.expand_dims(result, tuple(sorted(set(axes))) if axes else tuple(range(x.ndim)))
    return result


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis``; the gradient is split evenly between tied maxima."""
    x = as_tensor(x)
    if x.ndim == 0:
        return x
    return _max(x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Minimum over ``axis``; the gradient is split evenly between tied minima."""
    x = as_tensor(x)
    if x.ndim == 0:
        return x
    if x.dtype == "bool" or x.dtype.startswith("uint"):
        return pt.min(x, axis=_axes(x, axis), keepdims=keepdims)
    return -_max(-x, axis, keepdims)


def argmax(x: Any, axis: int = -1) -> Any:
    """Index of the largest value along ``axis`` as int64 (first one on ties; no gradient)."""
    x = as_tensor(x)
    return pt.cast(pt.argmax(x, axis=axis % x.ndim), "int64")


# ------------------------------------------------------------------------- shape ops


def reshape(x: Any, shape: Shape) -> Any:
    """Reshape to ``shape``, a tuple of ints where one entry may be -1."""
    return pt.reshape(as_tensor(x), tuple(int(d) for d in shape))


def batch_flatten(x: Any) -> Any:
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""
    x = as_tensor(x)
    rest = x.type.shape[1:]
    if all(d is not None for d in rest):
        return pt.reshape(x, (-1, int(np.prod(rest, dtype=np.int64))))
    return pt.reshape(x, (x.shape[0], -1))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute axes like ``numpy.transpose`` (reverse them when ``axes`` is None)."""
    x = as_tensor(x)
    if axes is None:
        return pt.transpose(x)
    return pt.transpose(x, tuple(int(a) % builtins.max(x.ndim, 1) for a in axes))


def expand_dims(x: Any, axis: int = -1) -> Any:
    """Insert a length-1 axis at ``axis``."""
    x = as_tensor(x)
    return pt.expand_dims(x, axis % (x.ndim + 1))


def squeeze(x: Any, axis: int) -> Any:
    """Remove the length-1 axis ``axis``."""
    x = as_tensor(x)
    axis = axis % x.ndim
    size = x.type.shape[axis]
    if size is not None and size != 1:
        raise ValueError(
            f"`squeeze` expects axis {axis} to have length 1. Received: shape {x.type.shape}"
        )
    return pt.squeeze(pt.specify_broadcastable(x, axis), axis)


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Any:
    """Join tensors along an existing axis."""
    dtypes = [t.dtype for t in tensors if isinstance(t, Variable)]
    for dtype in dtypes[1:]:
        check_same_dtype("concatenate", dtypes[0], dtype)
    items = [as_tensor(t) for t in tensors]
    return pt.concatenate(items, axis=axis % items[0].ndim)


def spatial_2d_padding(x: Any, padding: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """Zero-pad an NHWC tensor: ``((top, bottom), (left, right))``."""
    (top, bottom), (left, right) = padding
    return pad_spatial(as_tensor(x), (int(top), int(bottom)), (int(left), int(right)), 0.0)


def pad_spatial(x: Any, rows: tuple[int, int], cols: tuple[int, int], fill: float) -> Any:
    """Pad axes 1 and 2 of NHWC ``x`` with ``fill`` (gradient slices the padding off).

    Built by joining ``fill``-valued copies of an edge row/column to ``x``: an ``Alloc`` of the
    padded shape would make PyTensor re-analyse the whole graph above ``x`` on every call.
    """
    value = np.asarray(fill, dtype=x.dtype)
    for axis, (before, after) in ((1, rows), (2, cols)):
        if before == after == 0:
            continue
        edge = pt.full_like(x[:, :1] if axis == 1 else x[:, :, :1], value)
        x = pt.concatenate([edge] * before + [x] + [edge] * after, axis=axis)
    return x


def one_hot(indices: Any, num_classes: int) -> Any:
    """Integer tensor of shape ``s`` -> float32 tensor of shape ``s + (num_classes,)``."""
    indices = pt.cast(as_tensor(indices), "int64")
    classes = pt.arange(int(num_classes), dtype="int64")
    return pt.cast(pt.eq(pt.expand_dims(indices, -1), classes), _FLOATX)


# -------------------------------------------------------------------- linear algebra


def dot(x: Any, y: Any) -> Any:
    """Matrix product over the last axis of ``x`` and the first axis of a 2-D ``y``."""
    x, y = _pair("dot", x, y)
    if x.ndim <= 2:
        return pt.dot(x, y)
    flat = pt.reshape(x, (-1, x.shape[-1]))
    product = pt.dot(flat, y)
    out = pt.reshape(product, (*[x.shape[i] for i in range(x.ndim - 1)], y.shape[-1]))
    return pt.specify_shape(out, (*x.type.shape[:-1], y.type.shape[-1]))
