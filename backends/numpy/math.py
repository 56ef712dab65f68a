"""Element-wise math, comparisons, reductions, shape ops and ``dot``: their spec entries.

Each public function builds a graph node (static shape and dtype checked now). Below it sits
the op's entry: the ``forward`` a compiled step runs, then its ``derivative`` rule, then the
kernels of its gradient ops. Speed-ups that change the plan are lowering passes
(``lowering``), never part of an entry.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import parallel
from .graph import (
    Node,
    as_node,
    binary,
    broadcast_shapes,
    cast,
    float_dtype,
    normalize_axes,
    operand_pair,
    power,
    require_same_dtype,
    shaped_like,
    sum_to,
    unary,
    xp,
)
from .spec import SPLITS, WORKERS, derivative, forward, into

Axis = int | tuple[int, ...] | None
Rule = Callable[[Node, Node], tuple]

# ------------------------------------------------------------------ element-wise ops


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


def _unary_into(ufunc: Any) -> Any:
    return lambda node, index, checked: lambda x: ufunc(x, out=x)


def _binary_into(ufunc: Any) -> Any:
    def prepare(node: Node, index: int, checked: bool) -> Any:
        if index == 0 and checked:
            return lambda a, b: ufunc(a, b, out=a) if a.shape == b.shape else ufunc(a, b)
        if index == 0:
            return lambda a, b: _into_with_short_last_axis(ufunc, a, b)
        if checked:
            return lambda a, b: ufunc(a, b, out=b) if a.shape == b.shape else ufunc(a, b)
        return lambda a, b: ufunc(a, b, out=b)

    return prepare


# ops whose float result has their operands' dtype: big ones may be cut into slabs for threads
SPLITTING = frozenset(
    {"neg", "abs", "square", "sqrt", "exp", "log", "add", "sub", "mul", "div", "maximum", "minimum"}
)


def ufunc_op(op: str, ufunc: Any, rule: Rule | None, arity: int = 1) -> None:
    """The entry of an element-wise op computed by one NumPy ufunc (None: no gradient)."""

    def prepare(node: Node, workers: int = 1) -> Any:
        if workers <= 1 or node.dtype.kind != "f" or parallel.small(node.shape, node.dtype):
            return ufunc
        return parallel.split(ufunc, workers)

    options = (WORKERS, SPLITS) if op in SPLITTING else ()
    forward(op, differentiable=rule is not None, options=options)(prepare)
    if rule is not None:
        derivative(op)(rule)
    if rule is not None or arity == 1:
        into(op)(_unary_into(ufunc) if arity == 1 else _binary_into(ufunc))


def _d_div(node: Node, g: Node) -> tuple:
    a, b = node.inputs
    ga = g / b
    return sum_to(ga, a), sum_to(-ga * node, b)


def _d_power(node: Node, g: Node) -> tuple:
    x, y = node.inputs
    gx = g * y * binary("power", x, y - 1.0)
    gy = g * node * log(x) if y.dtype.kind == "f" else None
    return sum_to(gx, x), (None if gy is None else sum_to(gy, y))


def _d_extremum(node: Node, g: Node) -> tuple:
    """Gradient of ``maximum``/``minimum``: to ``x`` where it wins or ties, else to ``y``."""
    x, y = node.inputs
    pick_x = greater(x, y) if node.op == "maximum" else less(x, y)
    pick_x = binary("logical_or", pick_x, equal(x, y), dtype=np.dtype(bool))
    # NumPy returns the NaN operand (x when both are), and the derivative at NaN is NaN
    x_number, y_number = equal(x, x), equal(y, y)
    gx = where(x_number, where(pick_x, g, 0.0), x)
    gy = where(y_number, where(pick_x, 0.0, where(x_number, g, 0.0)), y)
    return sum_to(gx, x), sum_to(gy, y)


# op, ufunc, derivative rule: one line per element-wise op
ufunc_op("neg", xp.negative, lambda node, g: (-g,))
ufunc_op("abs", xp.abs, lambda node, g: (g * sign(node.inputs[0]),))
ufunc_op("sign", xp.sign, None)
ufunc_op("square", xp.square, lambda node, g: (g * (2.0 * node.inputs[0]),))
ufunc_op("sqrt", xp.sqrt, lambda node, g: (g * (0.5 / node),))
ufunc_op("exp", xp.exp, lambda node, g: (g * node,))
ufunc_op("log", xp.log, lambda node, g: (g / node.inputs[0],))
ufunc_op("round", xp.rint, None)
ufunc_op("add", xp.add, lambda node, g: (sum_to(g, node.inputs[0]), sum_to(g, node.inputs[1])), 2)
ufunc_op("sub", xp.subtract, lambda n, g: (sum_to(g, n.inputs[0]), sum_to(-g, n.inputs[1])), 2)
ufunc_op("mul", xp.multiply, lambda n, g: (sum_to(g * n.inputs[1], n.inputs[0]),
                                           sum_to(g * n.inputs[0], n.inputs[1])), 2)  # fmt: skip
ufunc_op("div", xp.true_divide, _d_div, 2)
ufunc_op("power", xp.power, _d_power, 2)
ufunc_op("maximum", xp.maximum, _d_extremum, 2)
ufunc_op("minimum", xp.minimum, _d_extremum, 2)
ufunc_op("equal", xp.equal, None, 2)
ufunc_op("greater", xp.greater, None, 2)
ufunc_op("less", xp.less, None, 2)
ufunc_op("logical_or", xp.logical_or, None, 2)


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


def pow(x: Any, exponent: float) -> Node:  # noqa: A001
    """Element-wise ``x ** exponent`` for a Python scalar ``exponent``."""
    return power(x, exponent)


@forward("pow_scalar")
def _pow_scalar(node: Node) -> Any:
    exponent = node.attrs["exponent"]
    if node.dtype.kind != "f":
        exponent = int(exponent)
    else:
        exponent = node.dtype.type(exponent)
    return lambda x: xp.power(x, exponent)


@derivative("pow_scalar")
def _d_pow_scalar(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    p = node.attrs["exponent"]
    return (g * (p * pow(x, p - 1.0)),)


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


@forward("clip")
def _clip(node: Node) -> Any:
    kind = node.dtype.type
    low = None if node.attrs["low"] is None else kind(node.attrs["low"])
    high = None if node.attrs["high"] is None else kind(node.attrs["high"])
    return lambda x: xp.clip(x, low, high)


@derivative("clip")
def _d_clip(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("clip_grad", (g, x), x.shape, g.dtype, dict(node.attrs)),)


@forward("clip_grad")
def _clip_grad(node: Node) -> Any:
    kind = node.dtype.type
    low, high = node.attrs["low"], node.attrs["high"]

    def clip_grad(g: Any, x: Any) -> Any:
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= kind(low)
        if high is not None:
            inside &= x <= kind(high)
        # a pick, not a product (0 outside even for an inf or NaN g); NaN where x is NaN
        grad = xp.where(inside, g, kind(0))
        xp.copyto(grad, x, where=xp.isnan(x), casting="unsafe")
        return grad

    return clip_grad


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


forward("where")(lambda node: xp.where)


@derivative("where")
def _d_where(node: Node, g: Node) -> tuple:
    c, x, y = node.inputs
    return None, sum_to(where(c, g, 0.0), x), sum_to(where(c, 0.0, g), y)


@forward("cast")
def _cast(node: Node) -> Any:
    dtype = node.dtype
    return lambda x: x.astype(dtype)


@derivative("cast")
def _d_cast(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (cast(g, x.dtype) if x.dtype.kind == "f" else None,)


def stop_gradient(x: Any) -> Node:
    """Return ``x`` unchanged, treated as a constant by ``gradients``."""
    x = as_node(x)
    return Node("stop_gradient", (x,), x.shape, x.dtype)


forward("stop_gradient", view=True, differentiable=False)(lambda node: lambda x: x)

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


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple of ints, or None for all axes)."""
    x = as_node(x)
    dtype = x.dtype if x.dtype.kind in "fc" else np.zeros(1, x.dtype).sum().dtype
    return reduction("sum", x, axis, keepdims, dtype)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:
    """Arithmetic mean over ``axis``; the result keeps ``x``'s float dtype."""
    x = as_node(x)
    return reduction("mean", x, axis, keepdims, float_dtype(x.dtype))


@forward("sum")
def _sum(node: Node) -> Any:
    return functools.partial(
        xp.add.reduce, axis=node.attrs["axes"], keepdims=node.attrs["keepdims"], dtype=node.dtype
    )


@forward("mean")
def _mean(node: Node) -> Any:
    axes, keepdims, kind = node.attrs["axes"], node.attrs["keepdims"], node.dtype.type
    add = xp.add.reduce  # the ufunc's own reduce skips numpy's Python-level wrappers

    def mean(x: Any) -> Any:
        total = add(x, axis=axes, keepdims=keepdims, dtype=kind)
        count = 1
        for a in axes:
            count *= x.shape[a]
        return total * kind(1.0 / count) if count else total * kind(np.nan)

    return mean


@derivative("sum", "mean")
def _d_sum_mean(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    attrs = {**node.attrs, "mean": node.op == "mean"}
    return (shaped_like("reduce_grad", g, x, **attrs),)


@forward("reduce_grad", view=True)
def _reduce_grad(node: Node) -> Any:
    """Spread the gradient of ``sum``/``mean`` back over the reduced axes."""
    axes, keepdims, mean = node.attrs["axes"], node.attrs["keepdims"], node.attrs["mean"]
    kind = node.dtype.type

    def spread(g: Any, shape: tuple) -> Any:
        if mean:
            count = 1
            for a in axes:
                count *= shape[a]
            g = g * kind(1.0 / builtins.max(count, 1))
        if not keepdims:
            g = g.reshape(tuple(1 if i in axes else d for i, d in enumerate(shape)))
        if g.size == 1 and len(shape) == 1:  # the usual mean over a batch of losses
            return xp.full(shape, g.reshape(()), dtype=kind)
        return xp.broadcast_to(g, shape)

    if len(node.inputs) == 1:
        shape = node.attrs["shape"]
        return lambda g: spread(g, shape)
    return lambda g, x: spread(g, x.shape)


@forward("sum_to", options=(WORKERS, SPLITS))
def _sum_to(node: Node, workers: int = 1) -> Any:
    """Sum a gradient over the axes broadcasting added (``graph.sum_to`` builds the node)."""
    lead, kept = node.attrs["lead"], node.attrs["kept"]
    if not kept:
        n_lead = len(lead)
        ones: dict[Any, Any] = {}  # per dtype, the longest vector of ones needed so far

        def sum_leading_axes(g: Any) -> Any:
            if g.size < 65536 or not g.flags.c_contiguous:
                return g.sum(axis=lead)
            width = builtins.max(math.prod(g.shape[n_lead:]), 1)
            rows = g.size // width if g.size else 0
            side = widened_rows(rows, width) if width < 32 else 1  # long rows for BLAS
            vector = ones.get(g.dtype)
            if vector is None or vector.size < rows // side:
                vector = ones[g.dtype] = xp.ones(rows // side, dtype=g.dtype)
            # on big arrays matrix-vector products beat sum()
            total = parallel.sum_rows(g.reshape(rows // side, side * width), vector, workers)
            return total.reshape(side, width).sum(axis=0).reshape(g.shape[n_lead:])

        return sum_leading_axes
    axes, n_lead = lead + kept, len(lead)

    def sum_to_shape(g: Any) -> Any:
        total = g.sum(axis=axes, keepdims=True)
        return total.reshape(total.shape[n_lead:]) if n_lead else total

    return sum_to_shape


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Maximum over ``axis``; the gradient is split evenly between tied maxima."""
    return reduction("max", x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Minimum over ``axis``; the gradient is split evenly between tied minima."""
    return reduction("min", x, axis, keepdims)


def _reduce_with(function: Any) -> Any:
    def prepare(node: Node) -> Any:
        return functools.partial(function, axis=node.attrs["axes"], keepdims=node.attrs["keepdims"])

    return prepare


forward("max")(_reduce_with(xp.maximum.reduce))
forward("min")(_reduce_with(xp.minimum.reduce))


@derivative("max", "min")
def _d_max_min(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("extreme_grad", (g, x, node), x.shape, g.dtype, dict(node.attrs)),)


@forward("extreme_grad")
def _extreme_grad(node: Node) -> Any:
    """Gradient of ``max``/``min``: split evenly between the tied extrema."""
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]

    def extreme_grad(g: Any, x: Any, out: Any) -> Any:
        if not keepdims:
            keep = _reduced_shape(x.shape, axes, True)
            g, out = g.reshape(keep), out.reshape(keep)
        # a NaN outranks every number (NumPy's max): a slice's NaN cells share its gradient,
        # which is NaN there (the derivative at NaN); the other cells get 0
        nan = xp.isnan(x)
        winners = (x == out) | nan
        share = g / winners.sum(axis=axes, keepdims=True).astype(g.dtype)
        grad = xp.where(winners, share, g.dtype.type(0))  # a pick: 0 even for an inf or NaN g
        xp.copyto(grad, x, where=nan)
        return grad

    return extreme_grad


def argmax(x: Any, axis: int = -1) -> Node:
    """Index of the largest value along ``axis`` as int64 (first one on ties; no gradient)."""
    x = as_node(x)
    (axis,) = normalize_axes(axis, x.ndim)
    shape = _reduced_shape(x.shape, (axis,), False)
    return Node("argmax", (x,), shape, np.int64, {"axis": axis})


@forward("argmax", differentiable=False)
def _argmax(node: Node) -> Any:
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


@forward("reshape", view=True)
def _prepare_reshape(node: Node) -> Any:
    shape = node.attrs["shape"]
    return lambda x: x.reshape(shape)


@derivative("reshape", "batch_flatten", "reshape_like")
def _d_reshape(node: Node, g: Node) -> tuple:
    x = node.inputs[0]
    return (shaped_like("reshape_like", g, x),) + (None,) * (len(node.inputs) - 1)


@forward("reshape_like", view=True)
def _reshape_like(node: Node) -> Any:
    if len(node.inputs) == 1:
        shape = node.attrs["shape"]
        return lambda g: g.reshape(shape)
    return lambda g, x: g.reshape(x.shape)


def batch_flatten(x: Any) -> Node:
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""
    x = as_node(x)
    rest = _known_size(x.shape[1:])
    return Node("batch_flatten", (x,), (x.shape[0], rest), x.dtype)


forward("batch_flatten", view=True)(lambda node: lambda x: x.reshape(x.shape[0], -1))


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


@forward("transpose", view=True)
def _prepare_transpose(node: Node) -> Any:
    axes = node.attrs["axes"]
    return lambda x: x.transpose(axes)


@derivative("transpose")
def _d_transpose(node: Node, g: Node) -> tuple:
    inverse = tuple(int(i) for i in np.argsort(node.attrs["axes"]))
    return (transpose(g, inverse),)


def expand_dims(x: Any, axis: int = -1) -> Node:
    """Insert a length-1 axis at ``axis``."""
    x = as_node(x)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"`axis` is out of range for rank {x.ndim}. Received: axis={axis}")
    axis = axis % (x.ndim + 1)
    shape = x.shape[:axis] + (1,) + x.shape[axis:]
    return Node("expand_dims", (x,), shape, x.dtype, {"axis": axis})


@forward("expand_dims", view=True)
def _prepare_expand_dims(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: xp.expand_dims(x, axis)


@derivative("expand_dims")
def _d_expand_dims(node: Node, g: Node) -> tuple:
    return (squeeze(g, node.attrs["axis"]),)


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


@forward("squeeze", view=True)
def _prepare_squeeze(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: xp.squeeze(x, axis)


@derivative("squeeze")
def _d_squeeze(node: Node, g: Node) -> tuple:
    return (expand_dims(g, node.attrs["axis"]),)


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


@forward("concatenate")
def _prepare_concatenate(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda *arrays: xp.concatenate(arrays, axis=axis)


@derivative("concatenate")
def _d_concatenate(node: Node, g: Node) -> tuple:
    axis = node.attrs["axis"]
    return tuple(
        Node("concat_part", (g, *node.inputs), x.shape, g.dtype, {"axis": axis, "index": i})
        for i, x in enumerate(node.inputs)
    )


@forward("concat_part", view=True)
def _concat_part(node: Node) -> Any:
    axis, index = node.attrs["axis"], node.attrs["index"]

    def concat_part(g: Any, *parts: Any) -> Any:
        start = builtins.sum(p.shape[axis] for p in parts[:index])
        where = [slice(None)] * g.ndim
        where[axis] = slice(start, start + parts[index].shape[axis])
        return g[tuple(where)]

    return concat_part


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


@forward("spatial_2d_padding")
def _prepare_spatial_2d_padding(node: Node) -> Any:
    (top, bottom), (left, right) = node.attrs["padding"]
    return lambda x: pad_spatial(x, top, bottom, left, right)


@derivative("spatial_2d_padding")
def _d_spatial_2d_padding(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("crop_spatial", (g,), x.shape, g.dtype, dict(node.attrs)),)


@forward("crop_spatial", view=True)
def _crop_spatial(node: Node) -> Any:
    (top, bottom), (left, right) = node.attrs["padding"]
    return lambda g: g[:, top : g.shape[1] - bottom, left : g.shape[2] - right]


def one_hot(indices: Any, num_classes: int) -> Node:
    """Integer tensor of shape ``s`` -> ``float32`` tensor of shape ``s + (num_classes,)``."""
    indices = as_node(indices)
    num_classes = int(num_classes)
    shape = indices.shape + (num_classes,)
    return Node("one_hot", (indices,), shape, np.float32, {"num_classes": num_classes})


@forward("one_hot", differentiable=False)
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


@forward("dot")
def _prepare_dot(node: Node) -> Any:
    return xp.dot if node.inputs[0].ndim <= 2 else _dot_nd


@derivative("dot")
def _d_dot(node: Node, g: Node) -> tuple:
    x, y = node.inputs
    gx = Node("dot_grad_x", (g, y), x.shape, g.dtype)
    gy = Node("dot_grad_y", (x, g), y.shape, g.dtype)
    return gx, gy


@forward("dot_grad_x")
def _dot_grad_x(node: Node) -> Any:
    def dot_grad_x(g: Any, y: Any) -> Any:
        if g.ndim <= 2:
            return xp.dot(g, y.T)
        return xp.dot(g.reshape(-1, g.shape[-1]), y.T).reshape(g.shape[:-1] + (y.shape[0],))

    return dot_grad_x


@forward("dot_grad_y")
def _dot_grad_y(node: Node) -> Any:
    def dot_grad_y(x: Any, g: Any) -> Any:
        if x.ndim == 1:
            return xp.outer(x, g)
        if x.ndim == 2:
            return xp.dot(x.T, g)
        return xp.dot(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]))

    return dot_grad_y
