"""Activations, cross-entropies, dropout and random tensors for the theano backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.special import Softmax

from minidl.backends.logits import link_logits, logits_of
from minidl.backends.theano import relu_ops, settings
from minidl.backends.theano.math import nan_slope_at_nan
from minidl.backends.theano.variables import _EPSILON, as_tensor

# ----------------------------------------------------------------------- activations


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None) -> Any:
    """Rectified linear unit: ``x`` for ``x > 0``, ``alpha * x`` otherwise, capped at max_value."""
    x = as_tensor(x)
    plain = alpha == 0 and max_value is None and x.dtype.startswith("float")
    if plain and settings.mode_name() not in ("NUMBA", "JAX"):
        return relu_ops.relu(x)  # NumPy's maximum; the gradient reads the output
    x = nan_slope_at_nan(x)
    zero = np.asarray(0, dtype=x.dtype)
    negative = zero if alpha == 0 else np.asarray(alpha, dtype=x.dtype) * x
    # Comparisons with NaN are false: test the side that keeps ``x`` so NaN passes through.
    result = pt.switch(pt.le(x, zero), negative, x)
    if max_value is not None:
        cap = np.asarray(max_value, dtype=x.dtype)
        result = pt.switch(pt.gt(result, cap), cap, result)
    return result


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    x = as_tensor(x)
    return link_logits(pt.sigmoid(x), x, "sigmoid")


def hard_sigmoid(x: Any) -> Any:
    """Piece-wise linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)``."""
    x = nan_slope_at_nan(as_tensor(x))
    kind = x.dtype
    linear = np.asarray(0.2, dtype=kind) * x + np.asarray(0.5, dtype=kind)
    return pt.clip(linear, np.asarray(0, dtype=kind), np.asarray(1, dtype=kind))


class NumpyTanh(Op):
    """Element-wise ``tanh`` run by NumPy inside the compiled step.

    PyTensor's C code calls the scalar ``tanhf`` per element: 4.0 ms for ConvLarge's first
    activation (375,000 float32 values) on this machine, a third of the whole training step.
    NumPy's vectorised ``tanh`` takes 0.06 ms. The gradient stays a PyTensor graph,
    ``g * (1 - y**2)``. Used in the C and Python modes; NUMBA and JAX compile ``tanh`` well
    themselves and keep PyTensor's op.
    """

    __props__ = ()

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        (x,) = inputs
        outputs[0][0] = np.asarray(np.tanh(x), dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph: Any, node: Apply, shapes: list) -> list:
        return shapes

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        (y,), (g,) = outputs, output_grads
        return [g * (np.asarray(1, dtype=y.dtype) - pt.sqr(y))]


_numpy_tanh = NumpyTanh()


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    x = as_tensor(x)
    if x.dtype.startswith("float") and settings.mode_name() not in ("NUMBA", "JAX"):
        return _numpy_tanh(x)
    return pt.tanh(x)


def _shifted(x: Any, axis: int) -> Any:
    """``x`` minus its maximum along ``axis``; the shift is constant for gradients (exact,
    since softmax and log-softmax do not depend on it)."""
    return x - disconnected_grad(pt.max(x, axis=axis, keepdims=True))


def _log_softmax(x: Any, axis: int) -> Any:
    shifted = _shifted(x, axis)
    return shifted - pt.log(pt.sum(pt.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along ``axis``, computed after subtracting the maximum."""
    # Element-wise ops and sums rather than PyTensor's Softmax op: they fuse into C loops and
    # need no inner function compiled on the first call.
    x = as_tensor(x)
    axis = axis % x.ndim
    exps = pt.exp(_shifted(x, axis))
    out = exps / pt.sum(exps, axis=axis, keepdims=True)
    return link_logits(out, x, "softmax", axis)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    x = nan_slope_at_nan(as_tensor(x))
    zero = np.asarray(0, dtype=x.dtype)
    # expm1 of min(x, 0): the unused branch never overflows, so its zero gradient stays finite
    negative = np.asarray(alpha, dtype=x.dtype) * pt.expm1(pt.minimum(x, zero))
    return pt.switch(pt.le(x, zero), negative, x)  # NaN passes through as NaN


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` computed without overflow."""
    return pt.softplus(as_tensor(x))


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``."""
    x = as_tensor(x)
    return x / (np.asarray(1, dtype=x.dtype) + pt.abs(x))


# --------------------------------------------------------------------- cross-entropy


class ClosedFormCrossEntropyGradient(Op):
    """A cross-entropy's value, passed on; its gradient is the closed form, not derived.

    Inputs ``(loss, target, logits)``. The gradient w.r.t. the logits is ``g * (sigmoid(z)
    - t)`` or ``g * (softmax(z) * sum(t) - t)``, as on the numpy and tensorflow backends:
    derived through the formula, an inf loss (an infinite logit) would give ``inf * 0``.
    """

    __props__ = ("activation", "axis")

    def __init__(self, activation: str, axis: int | None = None) -> None:
        self.activation, self.axis = activation, axis

    def make_node(self, loss: Any, target: Any, logits: Any) -> Apply:
        return Apply(self, [loss, target, logits], [loss.type()])

    view_map = {0: [0]}  # noqa: RUF012 (PyTensor reads it from the class)

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        outputs[0][0] = inputs[0]

    def infer_shape(self, fgraph: Any, node: Apply, shapes: list) -> list:
        return [shapes[0]]

    def connection_pattern(self, node: Apply) -> list:
        return [[False], [True], [True]]

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        _, t, z = inputs
        (g,) = output_grads
        if self.activation == "sigmoid":
            return [disconnected_type(), -g * z, g * (pt.sigmoid(z) - t)]
        g = pt.expand_dims(g, self.axis)
        shifted = _shifted(z, self.axis)
        exps = pt.exp(shifted)
        total = pt.sum(exps, axis=self.axis, keepdims=True)
        p = exps / total
        log_p = shifted - pt.log(total)
        g_z = g * (p * pt.sum(t, axis=self.axis, keepdims=True) - t)
        return [disconnected_type(), -g * log_p, g_z]


def _sigmoid_input(output: Any) -> Any | None:
    """The logits behind a ``sigmoid`` output (``backends.logits``; or PyTensor's own op)."""
    linked = logits_of(output, "sigmoid")
    if linked is not None:
        return linked
    node = output.owner
    if node is not None and isinstance(node.op, Elemwise):
        if isinstance(node.op.scalar_op, ps.Sigmoid):
            return node.inputs[0]
    return None


def _softmax_input(output: Any, axis: int) -> Any | None:
    """The logits behind a ``softmax`` output along ``axis`` (``backends.logits``; ``Softmax``)."""
    linked = logits_of(output, "softmax", axis, output.ndim)
    if linked is not None:
        return linked
    node = output.owner
    if node is not None and isinstance(node.op, Softmax):
        op_axis = node.op.axis
        if isinstance(op_axis, tuple | list):
            op_axis = op_axis[0] if len(op_axis) == 1 else None
        if op_axis is not None and op_axis % output.ndim == axis:
            return node.inputs[0]
    return None


def _closed_form(activation: str, axis: int | None, loss: Any, target: Any, logits: Any) -> Any:
    if settings.mode_name() in ("NUMBA", "JAX"):  # they compile no Python Op
        return loss
    return ClosedFormCrossEntropyGradient(activation, axis)(loss, target, logits)


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Element-wise binary cross-entropy (same shape as ``output``, no reduction)."""
    output = as_tensor(output)
    target = pt.cast(as_tensor(target), output.dtype)
    logits = output if from_logits else _sigmoid_input(output)
    kind = output.dtype
    if logits is not None:
        # softplus(z) - z * t equals max(z, 0) - z * t + log(1 + exp(-|z|)) but has no kink
        # at z = 0, so its gradient there is sigmoid(0) - t, not a mix of sub-gradients.
        target, logits = pt.broadcast_arrays(target, logits)
        loss = pt.softplus(logits) - logits * target
        return _closed_form("sigmoid", None, loss, target, logits)
    eps = np.asarray(_EPSILON, dtype=kind)
    one = np.asarray(1, dtype=kind)
    p = pt.clip(output, eps, one - eps)
    return -(target * pt.log(p) + (one - target) * pt.log(one - p))


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Any:
    """Cross-entropy between one-hot (or soft) ``target`` and ``output`` along ``axis``."""
    output = as_tensor(output)
    target = pt.cast(as_tensor(target), output.dtype)
    axis = axis % output.ndim
    logits = output if from_logits else _softmax_input(output, axis)
    if logits is not None:
        target, logits = pt.broadcast_arrays(target, logits)
        loss = -pt.sum(target * _log_softmax(logits, axis), axis=axis)
        return _closed_form("softmax", axis, loss, target, logits)
    kind = output.dtype
    eps = np.asarray(_EPSILON, dtype=kind)
    p = output / pt.sum(output, axis=axis, keepdims=True)
    p = pt.clip(p, eps, np.asarray(1, dtype=kind) - eps)
    return -pt.sum(target * pt.log(p), axis=axis)


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Like ``categorical_crossentropy`` over the last axis, with integer class ``target``."""
    output = as_tensor(output)
    target = as_tensor(target)
    if target.ndim == output.ndim:
        target = target[..., 0]
    if target.ndim != output.ndim - 1:
        raise ValueError(
            "`sparse_categorical_crossentropy` expects a target with the output's shape "
            f"without its last axis. Received: target rank {target.ndim} for output rank "
            f"{output.ndim}"
        )
    classes = pt.arange(output.shape[-1], dtype="int64")
    one_hot = pt.eq(pt.expand_dims(pt.cast(target, "int64"), -1), classes)
    axis = output.ndim - 1
    logits = output if from_logits else _softmax_input(output, axis)
    if logits is None:
        return categorical_crossentropy(pt.cast(one_hot, output.dtype), output, axis=-1)
    # the loss picks the target's log-probability: an -inf logit of another class adds 0
    log_p = pt.switch(one_hot, _log_softmax(logits, axis), np.asarray(0, dtype=output.dtype))
    loss = -pt.sum(log_p, axis=axis)
    return _closed_form("softmax", axis, loss, pt.cast(one_hot, output.dtype), logits)
