"""Reverse-mode autodiff for the numpy backend: every derivative rule, in one table.

``gradients(loss, wrt)`` walks the traced graph backwards once. Each rule receives the node
and the gradient of the loss with respect to the node's output, and returns one gradient node
per input (``None`` where there is none). Gradients reaching a node from several users are
added up, so ``x * x`` and ``x + x`` accumulate. Rules build ordinary graph nodes, so the
backward pass is compiled into the same static plan as the forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..im2col import Scratch
from . import conv  # noqa: F401 - registers the forward of the conv/pool gradient kernels
from . import ops_math as m
from . import ops_nn as nn
from .graph import NON_DIFFERENTIABLE, Constant, Node, as_node, register, topological_order, xp

Rule = Callable[[Node, Node], Sequence[Node | None]]
GRADIENTS: dict[str, Rule] = {}


def rule(*ops: str) -> Callable[[Rule], Rule]:
    """Decorator recording the derivative rule of ``ops``."""

    def decorate(function: Rule) -> Rule:
        for op in ops:
            GRADIENTS[op] = function
        return function

    return decorate


# ------------------------------------------------------------------- gradient kernels


def _fully_known(shape: tuple) -> bool:
    return all(d is not None for d in shape)


def shaped_like(op: str, g: Node, x: Node, **attrs: Any) -> Node:
    """A node ``op(g)`` whose result has ``x``'s shape (read at run time when not static)."""
    inputs = (g,) if _fully_known(x.shape) else (g, x)
    return Node(op, inputs, x.shape, g.dtype, {"shape": x.shape, **attrs})


def sum_to(g: Node, x: Node) -> Node:
    """Sum ``g`` over the axes that broadcasting added to ``x`` (``g`` when there are none)."""
    lead = g.ndim - x.ndim
    kept = [lead + i for i, d in enumerate(x.shape) if d == 1 and g.shape[lead + i] != 1]
    if lead == 0 and not kept:
        return g
    attrs = {"lead": tuple(range(lead)), "kept": tuple(kept)}
    return Node("sum_to", (g,), x.shape, g.dtype, attrs)


@register("sum_to")
def _prepare_sum_to(node: Node) -> Any:
    lead, kept = node.attrs["lead"], node.attrs["kept"]
    if not kept:
        n_lead = len(lead)
        ones: dict[int, Any] = {}

        def sum_leading_axes(g: Any) -> Any:
            if g.size < 65536 or not g.flags.c_contiguous:
                return g.sum(axis=lead)
            width = max(math.prod(g.shape[n_lead:]), 1)
            rows = g.size // width if g.size else 0
            side = m.widened_rows(rows, width) if width < 32 else 1  # long rows for BLAS
            if rows // side not in ones:  # on big arrays a matrix-vector product beats sum()
                ones.clear()
                ones[rows // side] = xp.ones(rows // side, dtype=g.dtype)
            total = xp.dot(ones[rows // side], g.reshape(rows // side, side * width))
            return total.reshape(side, width).sum(axis=0).reshape(g.shape[n_lead:])

        return sum_leading_axes
    axes, n_lead = lead + kept, len(lead)

    def sum_to_shape(g: Any) -> Any:
        total = g.sum(axis=axes, keepdims=True)
        return total.reshape(total.shape[n_lead:]) if n_lead else total

    return sum_to_shape


@register("reshape_like", view=True)
def _prepare_reshape_like(node: Node) -> Any:
    if len(node.inputs) == 1:
        shape = node.attrs["shape"]
        return lambda g: g.reshape(shape)
    return lambda g, x: g.reshape(x.shape)


def _keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


@register("reduce_grad", view=True)
def _prepare_reduce_grad(node: Node) -> Any:
    """Spread the gradient of ``sum``/``mean`` back over the reduced axes."""
    axes, keepdims, mean = node.attrs["axes"], node.attrs["keepdims"], node.attrs["mean"]
    kind = node.dtype.type

    def spread(g: Any, shape: tuple) -> Any:
        if mean:
            count = 1
            for a in axes:
                count *= shape[a]
            g = g * kind(1.0 / max(count, 1))
        if not keepdims:
            g = g.reshape(tuple(1 if i in axes else d for i, d in enumerate(shape)))
        if g.size == 1 and len(shape) == 1:  # the usual mean over a batch of losses
            return xp.full(shape, g.reshape(()), dtype=kind)
        return xp.broadcast_to(g, shape)

    if len(node.inputs) == 1:
        shape = node.attrs["shape"]
        return lambda g: spread(g, shape)
    return lambda g, x: spread(g, x.shape)


@register("extreme_grad")
def _prepare_extreme_grad(node: Node) -> Any:
    """Gradient of ``max``/``min``: split evenly between the tied extrema."""
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]

    def extreme_grad(g: Any, x: Any, out: Any) -> Any:
        if not keepdims:
            keep = _keepdims_shape(x.shape, axes)
            g, out = g.reshape(keep), out.reshape(keep)
        mask = (x == out).astype(x.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        mask *= g
        return mask

    return extreme_grad


@register("dot_grad_x")
def _prepare_dot_grad_x(node: Node) -> Any:
    def dot_grad_x(g: Any, y: Any) -> Any:
        if g.ndim <= 2:
            return xp.dot(g, y.T)
        return xp.dot(g.reshape(-1, g.shape[-1]), y.T).reshape(g.shape[:-1] + (y.shape[0],))

    return dot_grad_x


@register("dot_grad_y")
def _prepare_dot_grad_y(node: Node) -> Any:
    def dot_grad_y(x: Any, g: Any) -> Any:
        if x.ndim == 1:
            return xp.outer(x, g)
        if x.ndim == 2:
            return xp.dot(x.T, g)
        return xp.dot(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]))

    return dot_grad_y


@register("concat_part", view=True)
def _prepare_concat_part(node: Node) -> Any:
    axis, index = node.attrs["axis"], node.attrs["index"]

    def concat_part(g: Any, *parts: Any) -> Any:
        start = sum(p.shape[axis] for p in parts[:index])
        where = [slice(None)] * g.ndim
        where[axis] = slice(start, start + parts[index].shape[axis])
        return g[tuple(where)]

    return concat_part


@register("crop_spatial", view=True)
def _prepare_crop_spatial(node: Node) -> Any:
    (top, bottom), (left, right) = node.attrs["padding"]
    return lambda g: g[:, top : g.shape[1] - bottom, left : g.shape[2] - right]


@register("clip_grad")
def _prepare_clip_grad(node: Node) -> Any:
    kind = node.dtype.type
    low, high = node.attrs["low"], node.attrs["high"]

    def clip_grad(g: Any, x: Any) -> Any:
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= kind(low)
        if high is not None:
            inside &= x <= kind(high)
        return g * inside

    return clip_grad


@register("relu_grad")
def _prepare_relu_grad(node: Node) -> Any:
    kind = node.dtype.type
    alpha, cap = kind(node.attrs["alpha"]), node.attrs["max_value"]

    def relu_grad(g: Any, x: Any) -> Any:
        slope = (x > 0).astype(g.dtype)
        if alpha:
            slope[x <= 0] = alpha
        if cap is not None:
            slope[x >= kind(cap)] = 0
        slope *= g
        return slope

    return relu_grad


@register("tanh_grad")
def _prepare_tanh_grad(node: Node) -> Any:
    one = node.dtype.type(1)
    reused = Scratch()  # big activations: reuse last step's array (no fresh pages)

    def tanh_grad(g: Any, y: Any) -> Any:
        d = reused.result("d", y.shape, y.dtype, xp)
        xp.multiply(y, y, out=d)
        xp.subtract(one, d, out=d)
        d *= g
        return d

    return tanh_grad


@register("sigmoid_grad")
def _prepare_sigmoid_grad(node: Node) -> Any:
    one = node.dtype.type(1)

    def sigmoid_grad(g: Any, y: Any) -> Any:
        d = one - y
        d *= y
        d *= g
        return d

    return sigmoid_grad


@register("softmax_grad")
def _prepare_softmax_grad(node: Node) -> Any:
    axis = node.attrs["axis"]

    def softmax_grad(g: Any, y: Any) -> Any:
        gy = g * y
        gy -= y * gy.sum(axis=axis, keepdims=True)
        return gy

    return softmax_grad


@register("elu_grad")
def _prepare_elu_grad(node: Node) -> Any:
    alpha = node.dtype.type(node.attrs["alpha"])
    return lambda g, x, y: g * xp.where(x > 0, 1, y + alpha).astype(g.dtype, copy=False)


@register("softmax_ce_grad")
def _prepare_softmax_ce_grad(node: Node) -> Any:
    """Fused ``d(-sum(t * log softmax(z)))/dz = p * sum(t) - t`` (``p - t`` for one-hot t)."""
    axis = node.attrs["axis"]
    restore_axis = (slice(None),) * axis + (None,)
    add = xp.add.reduce

    def softmax_ce_grad(g: Any, t: Any, p: Any) -> Any:
        d = p * add(t, axis=axis, keepdims=True)
        d -= t
        d *= g[restore_axis]
        return d

    return softmax_ce_grad


@register("log_softmax")
def _prepare_log_softmax(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda z: nn.log_softmax_array(z, axis)


# ------------------------------------------------------------------------ the rules


@rule("add")
def _grad_add(node: Node, g: Node) -> tuple:
    a, b = node.inputs
    return sum_to(g, a), sum_to(g, b)


@rule("sub")
def _grad_sub(node: Node, g: Node) -> tuple:
    a, b = node.inputs
    return sum_to(g, a), sum_to(-g, b)


@rule("mul")
def _grad_mul(node: Node, g: Node) -> tuple:
    a, b = node.inputs
    return sum_to(g * b, a), sum_to(g * a, b)


@rule("div")
def _grad_div(node: Node, g: Node) -> tuple:
    a, b = node.inputs
    ga = g / b
    return sum_to(ga, a), sum_to(-ga * node, b)


@rule("power")
def _grad_power(node: Node, g: Node) -> tuple:
    x, y = node.inputs
    gx = g * y * m.binary("power", x, y - 1.0)
    gy = g * node * m.log(x) if y.dtype.kind == "f" else None
    return sum_to(gx, x), (None if gy is None else sum_to(gy, y))


@rule("pow_scalar")
def _grad_pow_scalar(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    p = node.attrs["exponent"]
    return (g * (p * m.pow(x, p - 1.0)),)


@rule("neg")
def _grad_neg(node: Node, g: Node) -> tuple:
    return (-g,)


@rule("abs")
def _grad_abs(node: Node, g: Node) -> tuple:
    return (g * m.sign(node.inputs[0]),)


@rule("square")
def _grad_square(node: Node, g: Node) -> tuple:
    return (g * (2.0 * node.inputs[0]),)


@rule("sqrt")
def _grad_sqrt(node: Node, g: Node) -> tuple:
    return (g * (0.5 / node),)


@rule("exp")
def _grad_exp(node: Node, g: Node) -> tuple:
    return (g * node,)


@rule("log")
def _grad_log(node: Node, g: Node) -> tuple:
    return (g / node.inputs[0],)


@rule("maximum", "minimum")
def _grad_extremum(node: Node, g: Node) -> tuple:
    x, y = node.inputs
    pick_x = m.greater(x, y) if node.op == "maximum" else m.less(x, y)
    pick_x = m.binary("logical_or", pick_x, m.equal(x, y), dtype=np.dtype(bool))
    return sum_to(m.where(pick_x, g, 0.0), x), sum_to(m.where(pick_x, 0.0, g), y)


register("logical_or", differentiable=False)(lambda node: xp.logical_or)


@rule("clip")
def _grad_clip(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("clip_grad", (g, x), x.shape, g.dtype, dict(node.attrs)),)


@rule("where")
def _grad_where(node: Node, g: Node) -> tuple:
    c, x, y = node.inputs
    return None, sum_to(m.where(c, g, 0.0), x), sum_to(m.where(c, 0.0, g), y)


@rule("cast")
def _grad_cast(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (m.cast(g, x.dtype) if x.dtype.kind == "f" else None,)


@rule("sum", "mean")
def _grad_sum_mean(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    attrs = {**node.attrs, "mean": node.op == "mean"}
    return (shaped_like("reduce_grad", g, x, **attrs),)


@rule("max", "min")
def _grad_max_min(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("extreme_grad", (g, x, node), x.shape, g.dtype, dict(node.attrs)),)


@rule("reshape", "batch_flatten", "reshape_like")
def _grad_reshape(node: Node, g: Node) -> tuple:
    x = node.inputs[0]
    return (shaped_like("reshape_like", g, x),) + (None,) * (len(node.inputs) - 1)


@rule("transpose")
def _grad_transpose(node: Node, g: Node) -> tuple:
    inverse = tuple(int(i) for i in np.argsort(node.attrs["axes"]))
    return (m.transpose(g, inverse),)


@rule("expand_dims")
def _grad_expand_dims(node: Node, g: Node) -> tuple:
    return (m.squeeze(g, node.attrs["axis"]),)


@rule("squeeze")
def _grad_squeeze(node: Node, g: Node) -> tuple:
    return (m.expand_dims(g, node.attrs["axis"]),)


@rule("concatenate")
def _grad_concatenate(node: Node, g: Node) -> tuple:
    axis = node.attrs["axis"]
    return tuple(
        Node("concat_part", (g, *node.inputs), x.shape, g.dtype, {"axis": axis, "index": i})
        for i, x in enumerate(node.inputs)
    )


@rule("spatial_2d_padding")
def _grad_spatial_2d_padding(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("crop_spatial", (g,), x.shape, g.dtype, dict(node.attrs)),)


@rule("dot")
def _grad_dot(node: Node, g: Node) -> tuple:
    x, y = node.inputs
    gx = Node("dot_grad_x", (g, y), x.shape, g.dtype)
    gy = Node("dot_grad_y", (x, g), y.shape, g.dtype)
    return gx, gy


def _through_max_pool(node: Node, g: Node, derivative: str, attrs: dict) -> Node | None:
    """The activation's gradient taken at a max-pool's size, when the pool alone reads it.

    ``pool2d_grad(g_p, y, pooled)`` routes each pooled gradient to a window position where
    ``y`` equals the pooled maximum, so ``f'(y) * pool2d_grad(g_p) == pool2d_grad(f'(pooled)
    * g_p)`` exactly (the same products, in the same order) for an activation whose
    derivative is a function of its output. The right side works on the pooled array,
    ``kh * kw`` times smaller. Returns None when ``g`` is not that pattern (``y`` has other
    readers, an average pool, ...).
    """
    if g.op != "pool2d_grad" or g.attrs["mode"] != "max" or g.inputs[1] is not node:
        return None
    pooled_grad, _, pooled = g.inputs
    scaled = Node(derivative, (pooled_grad, pooled), pooled.shape, g.dtype, attrs)
    return Node("pool2d_grad", (scaled, node, pooled), node.shape, g.dtype, dict(g.attrs))


@rule("relu")
def _grad_relu(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    attrs = dict(node.attrs)
    cap = attrs["max_value"]
    if attrs["alpha"] < 0 or (cap is not None and cap <= 0):
        return (Node("relu_grad", (g, x), x.shape, g.dtype, attrs),)
    # the output is > 0, <= 0 or >= cap exactly where the input is: the slope can be read
    # from the output, so the input need not be kept (and relu can run in place)
    pooled = _through_max_pool(node, g, "relu_grad", attrs)
    if pooled is not None:
        return (pooled,)
    return (Node("relu_grad", (g, node), x.shape, g.dtype, attrs),)


@rule("tanh")
def _grad_tanh(node: Node, g: Node) -> tuple:
    pooled = _through_max_pool(node, g, "tanh_grad", {})
    if pooled is not None:
        return (pooled,)
    return (Node("tanh_grad", (g, node), node.shape, g.dtype),)


@rule("sigmoid")
def _grad_sigmoid(node: Node, g: Node) -> tuple:
    pooled = _through_max_pool(node, g, "sigmoid_grad", {})
    if pooled is not None:
        return (pooled,)
    return (Node("sigmoid_grad", (g, node), node.shape, g.dtype),)


@rule("softmax")
def _grad_softmax(node: Node, g: Node) -> tuple:
    return (Node("softmax_grad", (g, node), node.shape, g.dtype, dict(node.attrs)),)


@rule("elu")
def _grad_elu(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("elu_grad", (g, x, node), x.shape, g.dtype, dict(node.attrs)),)


@rule("softplus")
def _grad_softplus(node: Node, g: Node) -> tuple:
    return (g * nn.sigmoid(node.inputs[0]),)


@rule("sigmoid_cross_entropy")
def _grad_sigmoid_cross_entropy(node: Node, g: Node) -> tuple:
    t, z = node.inputs
    return sum_to(-g * z, t), sum_to(g * (nn.sigmoid(z) - t), z)


@rule("softmax_cross_entropy")
def _grad_softmax_cross_entropy(node: Node, g: Node) -> tuple:
    t, z = node.inputs
    axis = node.attrs["axis"]
    p = node.attrs["softmax"]
    gz = Node("softmax_ce_grad", (g, t, p), z.shape, g.dtype, {"axis": axis})
    log_p = Node("log_softmax", (z,), z.shape, z.dtype, {"axis": axis})
    gt = -m.expand_dims(g, axis) * log_p
    return sum_to(gt, t), gz


@rule("conv2d")
def _grad_conv2d(node: Node, g: Node) -> tuple:
    x, kernel = node.inputs
    attrs = dict(node.attrs)
    gx = Node("conv2d_grad_input", (g, kernel), x.shape, g.dtype, {**attrs, "x_shape": x.shape})
    if not _fully_known(x.shape[1:]):
        gx = Node("conv2d_grad_input", (g, kernel, x), x.shape, g.dtype, attrs)
    gk = Node("conv2d_grad_kernel", (x, g), kernel.shape, g.dtype, attrs)
    return gx, gk


@rule("pool2d")
def _grad_pool2d(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    inputs = (g, x, node) if node.attrs["mode"] == "max" else (g, x)
    return (Node("pool2d_grad", inputs, x.shape, g.dtype, dict(node.attrs)),)


# ------------------------------------------------------------------------ the sweep


def _check_scalar(loss: Node) -> None:
    if any(d != 1 for d in loss.shape):
        raise ValueError(
            f"`gradients` needs a scalar loss (use K.mean or K.sum first). "
            f"Received: a loss of shape {loss.shape}"
        )


def _zeros_like(x: Node) -> Node:
    dtype = m.float_dtype(x.dtype)
    if _fully_known(x.shape):
        return Constant(xp.zeros(x.shape, dtype=dtype))
    return Node("zeros_like", (x,), x.shape, dtype)


@register("zeros_like", differentiable=False)
def _prepare_zeros_like(node: Node) -> Any:
    dtype = node.dtype
    return lambda x: xp.zeros(x.shape, dtype=dtype)


def _accumulate(parts: list[Node]) -> Node:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def gradients(loss: Any, variables: Sequence[Any]) -> list[Node]:
    """Return d(loss)/d(v) for each ``v`` (a variable or a traced input)."""
    loss = as_node(loss)
    _check_scalar(loss)
    wrt = [as_node(v) for v in variables]
    wanted = {v.uid for v in wrt}
    order = topological_order([loss])
    # only nodes that depend on a wanted node through differentiable ops need a gradient
    needs: set[int] = set()
    for node in order:
        if node.uid in wanted:
            needs.add(node.uid)
        elif node.op not in NON_DIFFERENTIABLE and any(i.uid in needs for i in node.inputs):
            needs.add(node.uid)
    pending: dict[int, list[Node]] = {loss.uid: [Constant(xp.ones(loss.shape, loss.dtype))]}
    found: dict[int, Node] = {}
    for node in reversed(order):
        parts = pending.pop(node.uid, None)
        if parts is None or node.uid not in needs:
            continue
        total = _accumulate(parts)
        found[node.uid] = total
        if not node.inputs:
            continue
        backward = GRADIENTS.get(node.op)
        if backward is None:
            raise NotImplementedError(
                f"The numpy backend has no gradient rule for op {node.op!r} (needed to "
                f"differentiate through {node!r})."
            )
        for parent, grad in zip(node.inputs, backward(node, total)):
            if grad is not None and parent.uid in needs:
                pending.setdefault(parent.uid, []).append(grad)
    return [found[v.uid] if v.uid in found else _zeros_like(v) for v in wrt]
