"""Activations, cross-entropies, dropout and random tensors for the numpy backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops_math as m
from .graph import INPLACE, Node, as_node, normalize_axes, register, xp

EPSILON = 1e-7

# ----------------------------------------------------------------------- activations


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None) -> Node:
    """Rectified linear unit: ``x`` for ``x > 0``, ``alpha * x`` otherwise, capped at max_value."""
    x = as_node(x)
    attrs = {"alpha": float(alpha), "max_value": None if max_value is None else float(max_value)}
    return Node("relu", (x,), x.shape, x.dtype, attrs)


@register("relu")
def _prepare_relu(node: Node) -> Any:
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


def _prepare_relu_in_place(node: Node, index: int, checked: bool) -> Any:
    zero = node.dtype.type(0)
    if not node.attrs["alpha"] and node.attrs["max_value"] is None:
        return lambda x: xp.maximum(x, zero, out=x)
    compute = _prepare_relu(node)

    def relu_into(x: Any) -> Any:
        x[...] = compute(x)
        return x

    return relu_into


INPLACE["relu"] = _prepare_relu_in_place


def sigmoid_array(x: Any) -> Any:
    """Logistic function of an array without overflow (run-time helper)."""
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def sigmoid(x: Any) -> Node:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    x = m.cast(as_node(x), m.float_dtype(as_node(x).dtype))
    return Node("sigmoid", (x,), x.shape, x.dtype)


register("sigmoid")(lambda node: sigmoid_array)


def hard_sigmoid(x: Any) -> Node:
    """Piece-wise linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)``."""
    return m.clip(0.2 * as_node(x) + 0.5, 0.0, 1.0)


def tanh(x: Any) -> Node:
    """Hyperbolic tangent."""
    return m.tanh(x)


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
    return Node("softmax", (x,), x.shape, x.dtype, {"axis": axis})


@register("softmax")
def _prepare_softmax(node: Node) -> Any:
    axis = node.attrs["axis"]
    return lambda x: softmax_array(x, axis)


def elu(x: Any, alpha: float = 1.0) -> Node:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    x = as_node(x)
    return Node("elu", (x,), x.shape, x.dtype, {"alpha": float(alpha)})


@register("elu")
def _prepare_elu(node: Node) -> Any:
    alpha = node.dtype.type(node.attrs["alpha"])
    return lambda x: xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))


def softplus(x: Any) -> Node:
    """``log(1 + exp(x))`` computed without overflow."""
    x = as_node(x)
    return Node("softplus", (x,), x.shape, x.dtype)


@register("softplus")
def _prepare_softplus(node: Node) -> Any:
    zero = node.dtype.type(0)
    return lambda x: xp.logaddexp(zero, x)


def softsign(x: Any) -> Node:
    """``x / (1 + |x|)``."""
    x = as_node(x)
    return x / (1.0 + m.abs(x))


# ------------------------------------------------------------------- cross-entropies


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Node:
    """Element-wise binary cross-entropy (same shape as ``output``, no reduction)."""
    output = as_node(output)
    target = m.cast(as_node(target, output.dtype), output.dtype)
    if from_logits or output.op == "sigmoid":
        logits = output if from_logits else output.inputs[0]
        shape = m.broadcast_shapes(target.shape, logits.shape)
        return Node("sigmoid_cross_entropy", (target, logits), shape, output.dtype)
    p = m.clip(output, EPSILON, 1.0 - EPSILON)
    return -(target * m.log(p) + (1.0 - target) * m.log(1.0 - p))


@register("sigmoid_cross_entropy")
def _prepare_sigmoid_cross_entropy(node: Node) -> Any:
    zero = node.dtype.type(0)

    def sigmoid_cross_entropy(t: Any, z: Any) -> Any:
        loss = xp.maximum(z, zero) - z * t
        loss += xp.log1p(xp.exp(-xp.abs(z)))
        return loss

    return sigmoid_cross_entropy


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Node:
    """Cross-entropy between one-hot (or soft) ``target`` and ``output`` along ``axis``."""
    output = as_node(output)
    target = m.cast(as_node(target, output.dtype), output.dtype)
    (axis,) = normalize_axes(axis, output.ndim)
    if from_logits or (output.op == "softmax" and output.attrs["axis"] == axis):
        logits = output if from_logits else output.inputs[0]
        probabilities = softmax(logits, axis) if from_logits else output
        shape = tuple(d for i, d in enumerate(output.shape) if i != axis)
        # ``softmax`` is kept for the gradient rule (p - t) and only computed when needed.
        attrs = {"axis": axis, "softmax": probabilities}
        return Node("softmax_cross_entropy", (target, logits), shape, output.dtype, attrs)
    p = output / m.sum(output, axis=axis, keepdims=True)
    p = m.clip(p, EPSILON, 1.0 - EPSILON)
    return -m.sum(target * m.log(p), axis=axis)


@register("softmax_cross_entropy")
def _prepare_softmax_cross_entropy(node: Node) -> Any:
    axis = node.attrs["axis"]

    def softmax_cross_entropy(t: Any, z: Any) -> Any:
        log_p = log_softmax_array(z, axis)
        log_p *= t
        return -xp.add.reduce(log_p, axis=axis)

    return softmax_cross_entropy


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
    one_hot = m.cast(m.one_hot(target, classes), output.dtype)
    return categorical_crossentropy(one_hot, output, from_logits=from_logits, axis=-1)


# ------------------------------------------------------------------------ randomness


def _generator(seed: int | None) -> Any:
    return np.random.default_rng(seed)


def dropout(x: Any, rate: float, seed: int | None = None) -> Node:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    x = as_node(x)
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    if rate == 0.0:
        return x
    attrs = {"rate": rate, "rng": _generator(seed)}
    mask = Node("dropout_mask", (x,), x.shape, m.float_dtype(x.dtype), attrs)
    return x * mask


@register("dropout_mask", differentiable=False)
def _prepare_dropout_mask(node: Node) -> Any:
    rng, rate, dtype = node.attrs["rng"], node.attrs["rate"], node.dtype
    scale = dtype.type(1.0 / (1.0 - rate))
    sample_dtype = dtype if dtype in (np.float32, np.float64) else np.float64

    def dropout_mask(x: Any) -> Any:
        keep = rng.random(x.shape, dtype=sample_dtype) >= rate
        mask = keep.astype(dtype)
        mask *= scale
        return xp.asarray(mask)

    return dropout_mask


def _static_shape(shape: Any) -> tuple[int, ...]:
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise ValueError(f"Random tensors need a fully known shape. Received: shape={dims}")
    return tuple(int(d) for d in dims)


def random_uniform(
    shape: Any,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Node:
    """A tensor of uniform samples with static ``shape``, fresh on every call of a step."""
    attrs = {"low": float(minval), "high": float(maxval), "rng": _generator(seed)}
    return Node("random_uniform", (), _static_shape(shape), dtype or "float32", attrs)


def random_normal(
    shape: Any,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Node:
    """A tensor of normal samples with static ``shape``, fresh on every call of a step."""
    attrs = {"mean": float(mean), "stddev": float(stddev), "rng": _generator(seed)}
    return Node("random_normal", (), _static_shape(shape), dtype or "float32", attrs)


@register("random_uniform", differentiable=False)
def _prepare_random_uniform(node: Node) -> Any:
    rng, shape, dtype = node.attrs["rng"], node.shape, node.dtype
    low, high = node.attrs["low"], node.attrs["high"]
    return lambda: xp.asarray(rng.uniform(low, high, shape).astype(dtype))


@register("random_normal", differentiable=False)
def _prepare_random_normal(node: Node) -> Any:
    rng, shape, dtype = node.attrs["rng"], node.shape, node.dtype
    mean, stddev = node.attrs["mean"], node.attrs["stddev"]
    return lambda: xp.asarray(rng.normal(mean, stddev, shape).astype(dtype))
