"""Element-wise math, comparisons, reductions, shape ops and ``dot`` for the numpy backend.

Each public function builds a graph node (static shape and dtype checked now); the
``register``-ed ``prepare`` functions return what the compiled plan calls at run time.
Derivative rules live in ``gradients.py``.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import OPERATOR_NAMES, mixed_dtypes_error
from .graph import (
    INPLACE,
    Node,
    as_node,
    broadcast_shapes,
    normalize_axes,
    operand_pair,
    register,
    xp,
)

Axis = int | tuple[int, ...] | None

# ------------------------------------------------------------------ element-wise ops

UNARY_UFUNCS: dict[str, Any] = {
    "neg": xp.negative,
    "abs": xp.abs,
    "sign": xp.sign,
    "square": xp.square,
    "sqrt": xp.sqrt,
    "exp": xp.exp,
    "log": xp.log,
    "round": xp.rint,
    "tanh": xp.tanh,
}
BINARY_UFUNCS: dict[str, Any] = {
    "add": xp.add,
    "sub": xp.subtract,
    "mul": xp.multiply,
    "div": xp.true_divide,
    "power": xp.power,
    "maximum": xp.maximum,
    "minimum": xp.minimum,
    "equal": xp.equal,
    "greater": xp.greater,
    "less": xp.less,
}
COMPARISONS = ("equal", "greater", "less")


def _ufunc_prepare(ufunc: Any) -> Any:
    return lambda node: ufunc


def _unary_inplace(ufunc: Any) -> Any:
    return lambda node, index, checked: lambda x: ufunc(x, out=x)


def widened_rows(rows: int, width: int) -> int:
    """How many rows of ``width`` values to lay side by side for a row of ~256 values.

    Broadcasting a short last axis (a bias of 6 channels) makes NumPy run its inner loop
    on 6 values at a time; viewing ``k`` consecutive rows as one (``k`` divides ``rows``)
    gives it long runs again.
    """
    for k in range(256 // builtins.max(width, 1), 1, -1):
        if rows % k == 0:
            return k
    return 1


def _into_with_short_last_axis(ufunc: Any, a: Any, b: Any) -> Any:
    """``ufunc(a, b, out=a)``, fast when ``b`` is a short vector along ``a``'s last axis."""
    width = b.shape[0] if getattr(b, "ndim", 0) == 1 else 0
    if 1 < width < 32 and a.ndim > 1 and a.shape[-1] == width and a.size >= 65536:
        if a.flags.c_contiguous and a.dtype == b.dtype:
            k = widened_rows(a.size // width, width)
            ufunc(a.reshape(-1, k * width), xp.tile(b, k), out=a.reshape(-1, k * width))
            return a
    return ufunc(a, b, out=a)


def _binary_inplace(ufunc: Any) -> Any:
    def prepare(node: Node, index: int, checked: bool) -> Any:
        if index == 0 and checked:
            return lambda a, b: ufunc(a, b, out=a) if a.shape == b.shape else ufunc(a, b)
        if index == 0:
            return lambda a, b: _into_with_short_last_axis(ufunc, a, b)
        if checked:
            return lambda a, b: ufunc(a, b, out=b) if a.shape == b.shape else ufunc(a, b)
        return lambda a, b: ufunc(a, b, out=b)

    return prepare


for _op, _ufunc in UNARY_UFUNCS.items():
    register(_op, differentiable=_op not in ("sign", "round"))(_ufunc_prepare(_ufunc))
    INPLACE[_op] = _unary_inplace(_ufunc)
for _op, _ufunc in BINARY_UFUNCS.items():
    register(_op, differentiable=_op not in COMPARISONS)(_ufunc_prepare(_ufunc))
    if _op not in COMPARISONS:
        INPLACE[_op] = _binary_inplace(_ufunc)


def float_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` itself when it is a float dtype, else ``float32``."""
    return dtype if dtype.kind == "f" else np.dtype("float32")


def unary(op: str, x: Any, dtype: Any = None, **attrs: Any) -> Node:
    """A node applying element-wise ``op`` to ``x``."""
    x = as_node(x)
    return Node(op, (x,), x.shape, dtype or x.dtype, attrs)


def require_same_dtype(op_name: str, *operands: Any) -> None:
    """Raise ``mixed_dtypes_error`` unless all tensor operands share one dtype.

    Non-tensor operands (Python and NumPy scalars, arrays) are exempt: they take the
    tensor's dtype. Checked once per traced op, never per call of a compiled step.
    """
    nodes = [x for x in operands if isinstance(x, Node)]
    for node in nodes[1:]:
        if node.dtype != nodes[0].dtype:
            raise mixed_dtypes_error(op_name, nodes[0].dtype.name, node.dtype.name)


def binary(op: str, a: Any, b: Any, dtype: Any = None) -> Node:
    """A node applying element-wise ``op`` to ``a`` and ``b`` with broadcasting."""
    a, b = operand_pair(a, b)
    if dtype is None:
        dtype = np.result_type(a.dtype, b.dtype)
        if op == "div" and dtype.kind != "f":
            dtype = np.dtype("float32")
    if dtype.kind == "f" and op != "power":
        a, b = cast(a, dtype), cast(b, dtype)
    return Node(op, (a, b), broadcast_shapes(a.shape, b.shape), dtype)


def abs(x: Any) -> Node:  # noqa: A001
    """Element-wise absolute value (gradient ``sign(x)``)."""
    return unary("abs", x)


def sign(x: Any) -> Node:
    """Element-wise sign: -1, 0 or 1 (gradient zero)."""
    return unary("sign", x)


def square(x: Any) -> Node:
    """Element-wise ``x ** 2``."""
    return unary("square", x)


def sqrt(x: Any) -> Node:
    """Element-wise square root."""
    x = as_node(x)
    return unary("sqrt", cast(x, float_dtype(x.dtype)))


def exp(x: Any) -> Node:
    """Element-wise natural exponential."""
    x = as_node(x)
    return unary("exp", cast(x, float_dtype(x.dtype)))


def log(x: Any) -> Node:
    """Element-wise natural logarithm."""
    x = as_node(x)
    return unary("log", cast(x, float_dtype(x.dtype)))


def tanh(x: Any) -> Node:
    """Hyperbolic tangent."""
    x = as_node(x)
    return unary("tanh", cast(x, float_dtype(x.dtype)))


def pow(x: Any, exponent: float) -> Node:  # noqa: A001
    """Element-wise ``x ** exponent`` for a Python scalar ``exponent``."""
    x = as_node(x)
    if isinstance(exponent, Node):
        return binary("power", x, exponent)
    if exponent == 2:
        return square(x)
    if x.dtype.kind != "f" and float(exponent) != int(exponent):
        x = cast(x, "float32")
    return unary("pow_scalar", x, exponent=float(exponent))


@register("pow_scalar")
def _prepare_pow_scalar(node: Node) -> Any:
    exponent = node.attrs["exponent"]
    if node.dtype.kind != "f":
        exponent = int(exponent)
    else:
        exponent = node.dtype.type(exponent)
    return lambda x: xp.power(x, exponent)


def maximum(x: Any, y: Any) -> Node:
    """Element-wise maximum with broadcasting (gradient goes to ``x`` on ties)."""
    require_same_dtype("maximum", x, y)
    return binary("maximum", x, y)


def minimum(x: Any, y: Any) -> Node:
    """Element-wise minimum with broadcasting (gradient goes to ``x`` on ties)."""
    require_same_dtype("minimum", x, y)
    return binary("minimum", x, y)


def clip(x: Any, min_value: float, max_value: float) -> Node:
    """Clip values to ``[min_value, max_value]``; gradient is zero outside the interval."""
    x = as_node(x)
    if max_value is not None and min_value is not None and max_value < min_value:
        max_value = min_value
    return unary("clip", x, low=min_value, high=max_value)


@register("clip")
def _prepare_clip(node: Node) -> Any:
    kind = node.dtype.type
    low = None if node.attrs["low"] is None else kind(node.attrs["low"])
    high = None if node.attrs["high"] is None else kind(node.attrs["high"])
    return lambda x: xp.clip(x, low, high)


def round(x: Any) -> Node:  # noqa: A001
    """Round half to even, element-wise (gradient zero)."""
    return unary("round", x)


def equal(x: Any, y: Any) -> Node:
    """Element-wise ``x == y`` as a boolean tensor (no gradient)."""
    require_same_dtype("equal", x, y)
    return binary("equal", x, y, dtype=np.dtype(bool))


def greater(x: Any, y: Any) -> Node:
    """Element-wise ``x > y`` as a boolean tensor (no gradient)."""
    require_same_dtype("greater", x, y)
    return binary("greater", x, y, dtype=np.dtype(bool))


def less(x: Any, y: Any) -> Node:
    """Element-wise ``x < y`` as a boolean tensor (no gradient)."""
    require_same_dtype("less", x, y)
    return binary("less", x, y, dtype=np.dtype(bool))


def where(condition: Any, x: Any, y: Any) -> Node:
    """Pick ``x`` where ``condition`` is true and ``y`` elsewhere, with broadcasting."""
    require_same_dtype("where", x, y)
    condition = as_node(condition)
    x, y = operand_pair(x, y)
    dtype = np.result_type(x.dtype, y.dtype)
    x, y = cast(x, dtype), cast(y, dtype)
    shape = broadcast_shapes(condition.shape, x.shape, y.shape)
    return Node("where", (condition, x, y), shape, dtype)


register("where")(lambda node: xp.where)


def cast(x: Any, dtype: Any) -> Node:
    """Return ``x`` converted to ``dtype``; float->int truncates toward zero."""
    x = as_node(x)
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return Node("cast", (x,), x.shape, dtype)


@register("cast")
def _prepare_cast(node: Node) -> Any:
    dtype = node.dtype
    return lambda x: x.astype(dtype)


def stop_gradient(x: Any) -> Node:
    """Return ``x`` unchanged, treated as a constant by ``gradients``."""
    x = as_node(x)
    return Node("stop_gradient", (x,), x.shape, x.dtype)


register("stop_gradient", view=True, differentiable=False)(lambda node: lambda x: x)

# ------------------------------------------------------------------------- reductions


def _reduced_shape(shape: tuple, axes: tuple[int, ...], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def reduction(op: str, x: Any, axis: Axis, keepdims: bool, dtype: Any = None) -> Node:
    """A node reducing ``x`` over ``axis`` with ``op`` (sum, mean, max, min)."""
    x = as_node(x)
    axes = normalize_axes(axis, x.ndim)
    shape = _reduced_shape(x.shape, axes, keepdims)
    return Node(op, (x,), shape, dtype or x.dtype, {"axes": axes, "keepdims": bool(keepdims)})


def _reduction_prepare(function: Any) -> Any:
    def prepare(node: Node) -> Any:
        return functools.partial(function, axis=node.attrs["axes"], keepdims=node.attrs["keepdims"])

    return prepare


for _op, _function in (("max", xp.maximum.reduce), ("min", xp.minimum.reduce)):
    register(_op)(_reduction_prepare(_function))


@register("sum")
def _prepare_sum(node: Node) -> Any:
    return functools.partial(
        xp.add.reduce, axis=node.attrs["axes"], keepdims=node.attrs["keepdims"], dtype=node.dtype
    )


@register("mean")
def _prepare_mean(node: Node) -> Any:
    axes, keepdims, kind = node.attrs["axes"], node.attrs["keepdims"], node.dtype.type
    add = xp.add.reduce  # the ufunc's own reduce skips numpy's Python-level wrappers

    def mean(x: Any) -> Any:
        total = add(x, axis=axes, keepdims=keepdims, dtype=kind)
        count = 1
        for a in axes:
            count *= x.shape[a]
        return total * kind(1.0 / count) if count else total * kind(np.nan)

    return mean


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple of ints, or None for all axes)."""
    x = as_node(x)
    dtype = x.dtype if x.dtype.kind in "fc" else np.zeros(1, x.dtype).sum().dtype
    return reduction("sum", x, axis, keepdims, dtype)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:
    """Arithmetic mean over ``axis``; the result keeps ``x``'s float dtype."""
    x = as_node(x)
    return reduction("mean", x, axis, keepdims, float_dtype(x.dtype))


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Maximum over ``axis``; the gradient is split evenly between tied maxima."""
    return reduction("max", x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Minimum over ``axis``; the gradient is split evenly between tied minima."""
    return reduction("min", x, axis, keepdims)


def argmax(x: Any, axis: int = -1) -> Node:
    """Index of the largest value along ``axis`` as int64 (first one on ties; no gradient)."""
    x = as_node(x)
    (axis,) = normalize_axes(axis, x.ndim)
    shape = _reduced_shape(x.shape, (axis,), False)
    return Node("argmax", (x,), shape, np.int64, {"axis": axis})


@register("argmax", differentiable=False)
def _prepare_argmax(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: xp.argmax(x, axis=axis).astype(np.int64, copy=False)


# ------------------------------------------------------------------------- shape ops


def _known_size(shape: tuple) -> int | None:
    return None if any(d is None for d in shape) else math.prod(shape)


def reshape(x: Any, shape: Sequence[int | None]) -> Node:
    """Reshape to ``shape``, a tuple of ints where one entry may be -1."""
    x = as_node(x)
    target = tuple(-1 if d is None else int(d) for d in shape)
    if target.count(-1) > 1:
        raise ValueError(f"Only one dimension of a reshape may be -1. Received: shape={shape}")
    total, known = _known_size(x.shape), math.prod(d for d in target if d != -1)
    if -1 not in target:
        if total is not None and total != known:
            raise ValueError(
                f"Cannot reshape a tensor of shape {x.shape} to {tuple(shape)}. "
                f"Received: shape={tuple(shape)}"
            )
        static = target
    else:
        if total is not None and (known == 0 or total % known):
            raise ValueError(
                f"Cannot reshape a tensor of shape {x.shape} to {tuple(shape)}. "
                f"Received: shape={tuple(shape)}"
            )
        fill = None if total is None or known == 0 else total // known
        static = tuple(fill if d == -1 else d for d in target)
    return Node("reshape", (x,), static, x.dtype, {"shape": target})


@register("reshape", view=True)
def _prepare_reshape(node: Node) -> Any:
    shape = node.attrs["shape"]
    return lambda x: x.reshape(shape)


def batch_flatten(x: Any) -> Node:
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""
    x = as_node(x)
    rest = _known_size(x.shape[1:])
    return Node("batch_flatten", (x,), (x.shape[0], rest), x.dtype)


register("batch_flatten", view=True)(lambda node: lambda x: x.reshape(x.shape[0], -1))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Node:
    """Permute axes like ``numpy.transpose`` (reverse them when ``axes`` is None)."""
    x = as_node(x)
    perm = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) % x.ndim for a in axes)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(
            f"`axes` must be a permutation of range({x.ndim}). Received: axes={axes!r}"
        )
    shape = tuple(x.shape[a] for a in perm)
    return Node("transpose", (x,), shape, x.dtype, {"axes": perm})


@register("transpose", view=True)
def _prepare_transpose(node: Node) -> Any:
    axes = node.attrs["axes"]
    return lambda x: x.transpose(axes)


def expand_dims(x: Any, axis: int = -1) -> Node:
    """Insert a length-1 axis at ``axis``."""
    x = as_node(x)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"`axis` is out of range for rank {x.ndim}. Received: axis={axis}")
    axis = axis % (x.ndim + 1)
    shape = x.shape[:axis] + (1,) + x.shape[axis:]
    return Node("expand_dims", (x,), shape, x.dtype, {"axis": axis})


@register("expand_dims", view=True)
def _prepare_expand_dims(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: xp.expand_dims(x, axis)


def squeeze(x: Any, axis: int) -> Node:
    """Remove the length-1 axis ``axis``."""
    x = as_node(x)
    (axis,) = normalize_axes(axis, x.ndim)
    if x.shape[axis] not in (1, None):
        raise ValueError(
            f"Cannot squeeze axis {axis} of a tensor of shape {x.shape}: its size is not 1. "
            f"Received: axis={axis}"
        )
    shape = x.shape[:axis] + x.shape[axis + 1 :]
    return Node("squeeze", (x,), shape, x.dtype, {"axis": axis})


@register("squeeze", view=True)
def _prepare_squeeze(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: xp.squeeze(x, axis)


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Node:
    """Join tensors along an existing axis."""
    require_same_dtype("concatenate", *tensors)
    nodes = [as_node(t) for t in tensors]
    if not nodes:
        raise ValueError("`concatenate` needs at least one tensor. Received: tensors=[]")
    dtype = np.result_type(*[n.dtype for n in nodes])
    nodes = [cast(n, dtype) for n in nodes]
    ndim = nodes[0].ndim
    (axis,) = normalize_axes(axis, ndim)
    shape = list(nodes[0].shape)
    for n in nodes[1:]:
        if n.ndim != ndim:
            raise ValueError(
                f"All tensors passed to `concatenate` must have the same rank. "
                f"Received: shapes {[m.shape for m in nodes]}"
            )
        for i, d in enumerate(n.shape):
            if i != axis and shape[i] is None:
                shape[i] = d
    sizes = [n.shape[axis] for n in nodes]
    shape[axis] = None if None in sizes else builtins.sum(sizes)
    return Node("concatenate", nodes, tuple(shape), dtype, {"axis": axis})


@register("concatenate")
def _prepare_concatenate(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda *arrays: xp.concatenate(arrays, axis=axis)


def spatial_2d_padding(x: Any, padding: tuple[tuple[int, int], tuple[int, int]]) -> Node:
    """Zero-pad an NHWC tensor: ``((top, bottom), (left, right))``."""
    x = as_node(x)
    if x.ndim != 4:
        raise ValueError(f"`spatial_2d_padding` expects an NHWC tensor. Received: shape={x.shape}")
    (top, bottom), (left, right) = ((int(a), int(b)) for a, b in padding)
    if not (top or bottom or left or right):
        return x
    grow = lambda d, n: None if d is None else d + n
    shape = (x.shape[0], grow(x.shape[1], top + bottom), grow(x.shape[2], left + right), x.shape[3])
    pads = ((top, bottom), (left, right))
    return Node("spatial_2d_padding", (x,), shape, x.dtype, {"padding": pads})


def pad_spatial(x: Any, top: int, bottom: int, left: int, right: int, fill: float = 0) -> Any:
    """Return NHWC ``x`` padded with ``fill`` on the two spatial axes (run-time helper)."""
    if not (top or bottom or left or right):
        return x
    n, h, w, c = x.shape
    out = xp.full((n, h + top + bottom, w + left + right, c), fill, dtype=x.dtype)
    out[:, top : top + h, left : left + w] = x
    return out


@register("spatial_2d_padding")
def _prepare_spatial_2d_padding(node: Node) -> Any:
    (top, bottom), (left, right) = node.attrs["padding"]
    return lambda x: pad_spatial(x, top, bottom, left, right)


def one_hot(indices: Any, num_classes: int) -> Node:
    """Integer tensor of shape ``s`` -> ``float32`` tensor of shape ``s + (num_classes,)``."""
    indices = as_node(indices)
    num_classes = int(num_classes)
    shape = indices.shape + (num_classes,)
    return Node("one_hot", (indices,), shape, np.float32, {"num_classes": num_classes})


@register("one_hot", differentiable=False)
def _prepare_one_hot(node: Node) -> Any:
    classes = xp.arange(node.attrs["num_classes"])
    dtype = node.dtype
    return lambda i: (i.astype(np.int64, copy=False)[..., None] == classes).astype(dtype)


# -------------------------------------------------------------------- linear algebra


def dot(x: Any, y: Any) -> Node:
    """Matrix product over the last axis of ``x`` and the first axis of a 2-D ``y``."""
    require_same_dtype("dot", x, y)
    x, y = operand_pair(x, y)
    dtype = np.result_type(x.dtype, y.dtype)
    x, y = cast(x, dtype), cast(y, dtype)
    if y.ndim != 2 or x.ndim < 1:
        raise ValueError(
            f"`dot` expects x of shape (..., n) and a 2-D y of shape (n, m). "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    n_x, n_y = x.shape[-1], y.shape[0]
    if n_x is not None and n_y is not None and n_x != n_y:
        raise ValueError(
            f"`dot` needs x's last axis to match y's first axis. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    return Node("dot", (x, y), x.shape[:-1] + (y.shape[1],), dtype)


def _dot_nd(x: Any, y: Any) -> Any:
    if x.ndim <= 2:
        return xp.dot(x, y)
    return xp.dot(x.reshape(-1, x.shape[-1]), y).reshape(x.shape[:-1] + (y.shape[1],))


@register("dot")
def _prepare_dot(node: Node) -> Any:
    return xp.dot if node.inputs[0].ndim <= 2 else _dot_nd


# --------------------------------------------------------------- operators on nodes


def _swap(function: Any) -> Any:
    return lambda self, other: function(other, self)


def _operator(symbol: str, op: str) -> Any:
    """``Node.__add__`` and friends: the dtype rule of the contract, then ``binary``."""
    name = OPERATOR_NAMES[symbol]

    def apply(a: Any, b: Any) -> Node:
        require_same_dtype(name, a, b)
        return binary(op, a, b)

    return apply


def _power(a: Node, b: Any) -> Node:
    """``a ** b``: a tensor exponent must have ``a``'s dtype; a scalar one goes to ``pow``."""
    require_same_dtype("power", a, b)
    return pow(a, b)


Node.__add__ = _operator("+", "add")
Node.__radd__ = _swap(Node.__add__)
Node.__sub__ = _operator("-", "sub")
Node.__rsub__ = _swap(Node.__sub__)
Node.__mul__ = _operator("*", "mul")
Node.__rmul__ = _swap(Node.__mul__)
Node.__truediv__ = _operator("/", "div")
Node.__rtruediv__ = _swap(Node.__truediv__)
Node.__pow__ = _power
Node.__rpow__ = lambda a, b: binary("power", b, a)
Node.__neg__ = lambda a: unary("neg", a)
Node.__abs__ = lambda a: abs(a)
