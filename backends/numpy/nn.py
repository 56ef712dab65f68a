"""Activations and cross-entropies: their spec entries (forward, then derivative rule).

A softmax or sigmoid output records the logits it came from (``backends.logits``: the
``_keras_logits`` attribute, as on the theano and tensorflow backends' tensors); the
cross-entropies then work on the logits, exact where ``log(softmax(z))`` would be ``-inf``.
"""

from __future__ import annotations

from typing import Any

from ..logits import link_logits, logits_of
from . import math as m
from .graph import Node, as_node, broadcast_shapes, cast, float_dtype, normalize_axes, sum_to, xp
from .spec import OUT, derivative, forward, into

EPSILON = 1e-7

# ----------------------------------------------------------------------- activations


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None) -> Node:
    """Rectified linear unit: ``x`` for ``x > 0``, ``alpha * x`` otherwise, capped at max_value."""
    x = as_node(x)
    attrs = {"alpha": float(alpha), "max_value": None if max_value is None else float(max_value)}
    return Node("relu", (x,), x.shape, x.dtype, attrs)


@forward("relu")
def _relu(node: Node) -> Any:
    kind = node.dtype.type
    zero, alpha = kind(0), kind(node.attrs["alpha"])
    cap = node.attrs["max_value"]
    cap = None if cap is None else kind(cap)
    if not alpha and cap is None:
        return lambda x: xp.maximum(x, zero)

    def leaky_capped_relu(x: Any) -> Any:
        y = xp.where(x > zero, x, x * alpha) if alpha else xp.maximum(x, zero)
        return y if cap is None else xp.minimum(y, cap)

    return leaky_capped_relu


@into("relu")
def _relu_into(node: Node, index: int, checked: bool) -> Any:
    zero = node.dtype.type(0)
    if not node.attrs["alpha"] and node.attrs["max_value"] is None:
        return lambda x: xp.maximum(x, zero, out=x)
    compute = _relu(node)

    def relu_into(x: Any) -> Any:
        x[...] = compute(x)
        return x

    return relu_into


@derivative("relu")
def _d_relu(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    attrs = dict(node.attrs)
    cap = attrs["max_value"]
    if attrs["alpha"] < 0 or (cap is not None and cap <= 0):
        return (Node("relu_grad", (g, x), x.shape, g.dtype, attrs),)
    # the output is > 0, <= 0 or >= cap exactly where the input is: the slope is read from
    # the output, so the input need not be kept (and relu can run in place)
    return (Node("relu_grad", (g, node), x.shape, g.dtype, attrs),)


@forward("relu_grad")
def _relu_grad(node: Node) -> Any:
    kind = node.dtype.type
    alpha, cap = kind(node.attrs["alpha"]), node.attrs["max_value"]

    if not alpha and cap is None:

        def plain_relu_grad(g: Any, x: Any) -> Any:
            if all_finite(g, x):  # then the pick below equals this product (3x faster)
                return g * (x > 0)
            # ``x`` is relu's output: 0 or NaN where ``x > 0`` fails
            return xp.where(x > 0, g, x.astype(g.dtype, copy=False))

        return plain_relu_grad

    def relu_grad(g: Any, x: Any) -> Any:
        # a pick, not a product: 0 where x <= 0 even for an inf or NaN g; NaN where x is NaN
        grad = xp.where(x > 0, g, g * alpha if alpha else kind(0))
        if cap is not None:
            grad[x >= kind(cap)] = 0
        nan = xp.isnan(x)
        if nan.any():
            grad[nan] = xp.nan
        return grad

    return relu_grad


def all_finite(*arrays: Any) -> bool:
    """Whether two arrays hold no inf or NaN: one BLAS dot product (an overflow says no)."""
    a, b = arrays
    return bool(xp.isfinite(xp.dot(a.reshape(-1), b.reshape(-1))))


@into("relu_grad")
def _relu_grad_into(node: Node, index: int, checked: bool) -> Any:
    """``relu_grad`` written into ``g`` (index 0) or the array the slope is read from (1)."""
    compute = _relu_grad(node)
    if not node.attrs["alpha"] and node.attrs["max_value"] is None:
        zero = node.dtype.type(0)

        def plain_relu_grad_into(g: Any, x: Any) -> Any:
            target = (g, x)[index]
            if all_finite(g, x):
                return xp.multiply(g, x > zero, out=target)
            target[...] = compute(g, x)
            return target

        return plain_relu_grad_into

    def relu_grad_into(g: Any, x: Any) -> Any:
        target = (g, x)[index]
        target[...] = compute(g, x)
        return target

    return relu_grad_into


def tanh(x: Any) -> Node:
    """Hyperbolic tangent."""
    x = as_node(x)
    return Node("tanh", (cast(x, float_dtype(x.dtype)),), x.shape, float_dtype(x.dtype))


forward("tanh")(lambda node: xp.tanh)
into("tanh")(lambda node, index, checked: lambda x: xp.tanh(x, out=x))


@derivative("tanh")
def _d_tanh(node: Node, g: Node) -> tuple:
    return (Node("tanh_grad", (g, node), node.shape, g.dtype),)


@forward("tanh_grad", options=(OUT,))
def _tanh_grad(node: Node, out: Any = None) -> Any:
    one = node.dtype.type(1)

    def tanh_grad(g: Any, y: Any) -> Any:
        d = out(y.shape, y.dtype) if out is not None else xp.empty_like(y)
        xp.multiply(y, y, out=d)
        xp.subtract(one, d, out=d)
        d *= g
        return d

    return tanh_grad


def sigmoid_array(x: Any) -> Any:
    """Logistic function of an array without overflow (run-time helper)."""
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def sigmoid(x: Any) -> Node:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    x = cast(as_node(x), float_dtype(as_node(x).dtype))
    return link_logits(Node("sigmoid", (x,), x.shape, x.dtype), x, "sigmoid")


forward("sigmoid")(lambda node: sigmoid_array)


@derivative("sigmoid")
def _d_sigmoid(node: Node, g: Node) -> tuple:
    return (Node("sigmoid_grad", (g, node), node.shape, g.dtype),)


@forward("sigmoid_grad")
def _sigmoid_grad(node: Node) -> Any:
    one = node.dtype.type(1)

    def sigmoid_grad(g: Any, y: Any) -> Any:
        d = one - y
        d *= y
        d *= g
        return d

    return sigmoid_grad


def hard_sigmoid(x: Any) -> Node:
    """Piece-wise linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)``."""
    return m.clip(0.2 * as_node(x) + 0.5, 0.0, 1.0)


def softmax_array(x: Any, axis: int) -> Any:
    """Softmax of an array along ``axis`` after subtracting the maximum (run-time helper)."""
    e = xp.subtract(x, xp.maximum.reduce(x, axis=axis, keepdims=True))
    xp.exp(e, out=e)
    e /= xp.add.reduce(e, axis=axis, keepdims=True)
    return e


def log_softmax_array(x: Any, axis: int) -> Any:
    """``log(softmax(x))`` along ``axis`` computed stably (run-time helper)."""
    shifted = xp.subtract(x, xp.maximum.reduce(x, axis=axis, keepdims=True))
    shifted -= xp.log(xp.add.reduce(xp.exp(shifted), axis=axis, keepdims=True))
    return shifted


def softmax(x: Any, axis: int = -1) -> Node:
    """Softmax along ``axis``, computed after subtracting the maximum."""
    x = as_node(x)
    (axis,) = normalize_axes(axis, x.ndim)
    return link_logits(Node("softmax", (x,), x.shape, x.dtype, {"axis": axis}), x, "softmax", axis)


@forward("softmax")
def _softmax(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: softmax_array(x, axis)


@derivative("softmax")
def _d_softmax(node: Node, g: Node) -> tuple:
    return (Node("softmax_grad", (g, node), node.shape, g.dtype, dict(node.attrs)),)


@forward("softmax_grad")
def _softmax_grad(node: Node) -> Any:
    axis = node.attrs["axis"]

    def softmax_grad(g: Any, y: Any) -> Any:
        gy = g * y
        gy -= y * gy.sum(axis=axis, keepdims=True)
        return gy

    return softmax_grad


@forward("log_softmax")
def _log_softmax(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda z: log_softmax_array(z, axis)


def elu(x: Any, alpha: float = 1.0) -> Node:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    x = as_node(x)
    return Node("elu", (x,), x.shape, x.dtype, {"alpha": float(alpha)})


@forward("elu")
def _elu(node: Node) -> Any:
    alpha = node.dtype.type(node.attrs["alpha"])
    return lambda x: xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))


@derivative("elu")
def _d_elu(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("elu_grad", (g, x, node), x.shape, g.dtype, dict(node.attrs)),)


@forward("elu_grad")
def _elu_grad(node: Node) -> Any:
    alpha = node.dtype.type(node.attrs["alpha"])
    return lambda g, x, y: g * xp.where(x > 0, 1, y + alpha).astype(g.dtype, copy=False)


def softplus(x: Any) -> Node:
    """``log(1 + exp(x))`` computed without overflow."""
    x = as_node(x)
    return Node("softplus", (x,), x.shape, x.dtype)


@forward("softplus")
def _softplus(node: Node) -> Any:
    zero = node.dtype.type(0)
    return lambda x: xp.logaddexp(zero, x)


@derivative("softplus")
def _d_softplus(node: Node, g: Node) -> tuple:
    return (g * sigmoid(node.inputs[0]),)


def softsign(x: Any) -> Node:
    """``x / (1 + |x|)``."""
    x = as_node(x)
    return x / (1.0 + m.abs(x))


# ------------------------------------------------------------------- cross-entropies


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Node:
    """Element-wise binary cross-entropy (same shape as ``output``, no reduction)."""
    output = as_node(output)
    target = cast(as_node(target, output.dtype), output.dtype)
    logits = output if from_logits else logits_of(output, "sigmoid")
    if logits is not None:
        shape = broadcast_shapes(target.shape, logits.shape)
        return Node("sigmoid_cross_entropy", (target, logits), shape, output.dtype)
    p = m.clip(output, EPSILON, 1.0 - EPSILON)
    return -(target * m.log(p) + (1.0 - target) * m.log(1.0 - p))


@forward("sigmoid_cross_entropy")
def _sigmoid_cross_entropy(node: Node) -> Any:
    zero = node.dtype.type(0)

    def sigmoid_cross_entropy(t: Any, z: Any) -> Any:
        loss = xp.maximum(z, zero) - z * t
        loss += xp.log1p(xp.exp(-xp.abs(z)))
        return loss

    return sigmoid_cross_entropy


@derivative("sigmoid_cross_entropy")
def _d_sigmoid_cross_entropy(node: Node, g: Node) -> tuple:
    t, z = node.inputs
    return sum_to(-g * z, t), sum_to(g * (sigmoid(z) - t), z)


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Node:
    """Cross-entropy between one-hot (or soft) ``target`` and ``output`` along ``axis``."""
    return _categorical_crossentropy(target, output, from_logits, axis, pick=False)


def _categorical_crossentropy(
    target: Any, output: Any, from_logits: bool, axis: int, pick: bool
) -> Node:
    """``categorical_crossentropy``; with ``pick`` (a one-hot target made from class
    indices) it picks the target's log-probability: an -inf logit elsewhere adds 0, not NaN."""
    output = as_node(output)
    target = cast(as_node(target, output.dtype), output.dtype)
    (axis,) = normalize_axes(axis, output.ndim)
    logits = output if from_logits else logits_of(output, "softmax", axis, output.ndim)
    if logits is not None:
        shape = tuple(d for i, d in enumerate(output.shape) if i != axis)
        # the softmax output, when there is one, is read by the gradient rule (p - t)
        inputs = (target, logits) if from_logits else (target, logits, output)
        attrs = {"axis": axis, "pick": pick}
        return Node("softmax_cross_entropy", inputs, shape, output.dtype, attrs)
    p = output / m.sum(output, axis=axis, keepdims=True)
    p = m.clip(p, EPSILON, 1.0 - EPSILON)
    return -m.sum(target * m.log(p), axis=axis)


@forward("softmax_cross_entropy")
def _softmax_cross_entropy(node: Node) -> Any:
    axis = node.attrs["axis"]

    pick = node.attrs.get("pick", False)

    def softmax_cross_entropy(t: Any, z: Any, p: Any = None) -> Any:
        log_p = log_softmax_array(z, axis)
        if pick:
            log_p = xp.where(t != 0, log_p, log_p.dtype.type(0))
        log_p *= t
        return -xp.add.reduce(log_p, axis=axis)

    return softmax_cross_entropy


@derivative("softmax_cross_entropy")
def _d_softmax_cross_entropy(node: Node, g: Node) -> tuple:
    t, z = node.inputs[:2]
    axis = node.attrs["axis"]
    p = node.inputs[2] if len(node.inputs) == 3 else softmax(z, axis)
    gz = Node("softmax_ce_grad", (g, t, p), z.shape, g.dtype, {"axis": axis})
    log_p = Node("log_softmax", (z,), z.shape, z.dtype, {"axis": axis})
    gt = -m.expand_dims(g, axis) * log_p
    return (sum_to(gt, t), gz) + (None,) * (len(node.inputs) - 2)


@forward("softmax_ce_grad")
def _softmax_ce_grad(node: Node) -> Any:
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


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Node:
    """Like ``categorical_crossentropy`` over the last axis, with integer class ``target``."""
    output = as_node(output)
    target = as_node(target)
    if target.ndim == output.ndim and target.shape[-1] in (1, None):
        target = m.squeeze(target, -1)
    if target.ndim != output.ndim - 1:
        raise ValueError(
            "`target` must have the shape of `output` without its last axis. "
            f"Received: target.shape={target.shape}, output.shape={output.shape}"
        )
    classes = output.shape[-1]
    if classes is None:
        raise ValueError(
            f"The last axis of `output` must have a known size. Received: shape={output.shape}"
        )
    one_hot = cast(m.one_hot(target, classes), output.dtype)
    return _categorical_crossentropy(one_hot, output, from_logits, -1, pick=True)
