"""Activations, cross-entropies, convolution and pooling on TensorFlow tensors.

``sigmoid`` and ``softmax`` link each output to its logits (``backends.logits``: the
``_keras_logits`` attribute, as on the other backends), so the cross-entropies can work from
the logits (numerically stable). Inside a traced step the producing op is also recognised by
its type (``Sigmoid`` / ``Softmax``), which covers outputs made by plain TensorFlow ops too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.backends.logits import link_logits, logits_of

from ._runtime import epsilon, tf
from .math import nan_slope_at_nan
from .variables import like, to_tensor


def _same_axis(a: int, b: int, rank: int | None) -> bool:
    return a % rank == b % rank if rank else a == b


def _recorded_logits(output: Any, activation: str, axis: int) -> Any:
    """The logits ``output`` was computed from by ``activation`` along ``axis``, or None."""
    rank = output.shape.rank
    linked = logits_of(output, activation, axis, rank)
    if linked is not None:
        return linked
    if tf.executing_eagerly() or isinstance(output, tf.Variable):
        return None
    # A plain TensorFlow sigmoid/softmax (last axis) in the traced graph.
    if activation == "sigmoid" and output.op.type == "Sigmoid":
        return output.op.inputs[0]
    if activation == "softmax" and output.op.type == "Softmax" and _same_axis(axis, -1, rank):
        return output.op.inputs[0]
    return None


# ------------------------------------------------------------------------ activations


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None) -> Any:
    """Rectified linear unit: ``x`` for ``x > 0``, ``alpha * x`` otherwise, capped at max_value."""
    x = nan_slope_at_nan(to_tensor(x))
    # Not tf.nn.relu: grappler fuses it into MatMul/Conv2D kernels that turn NaN into 0.
    # Testing ``x <= 0`` (false for NaN) lets NaN through, as NumPy's maximum does.
    negative = x * like(alpha, x) if alpha else tf.zeros_like(x)
    y = tf.where(x <= 0, negative, x)
    if max_value is not None:
        y = tf.minimum(y, like(max_value, x))
    return y


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    x = to_tensor(x)
    y = tf.sigmoid(x)
    link_logits(y, x, "sigmoid")
    return y


def hard_sigmoid(x: Any) -> Any:
    """Piece-wise linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)``."""
    x = nan_slope_at_nan(to_tensor(x))
    return tf.clip_by_value(x * like(0.2, x) + like(0.5, x), like(0.0, x), like(1.0, x))


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return tf.tanh(to_tensor(x))


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along ``axis``, computed after subtracting the maximum."""
    x = to_tensor(x)
    y = tf.nn.softmax(x, axis=axis)
    # tf's kernel skips NaN and +inf entries; NumPy's exp(x - max(x)) makes the row NaN.
    finite = tf.reduce_all(x < like(np.inf, x), axis=axis, keepdims=True)
    y = tf.where(finite, y, like(np.nan, x))
    link_logits(y, x, "softmax", axis)
    return y


def elu(x: Any, alpha: float = 1.0) -> Any:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    x = nan_slope_at_nan(to_tensor(x))
    if alpha == 1.0:
        return tf.nn.elu(x)
    # elu(x) is exp(x) - 1 on the negative side and never overflows, unlike exp(x) itself.
    return tf.where(x > 0, x, like(alpha, x) * tf.nn.elu(x))


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` computed without overflow."""
    return tf.nn.softplus(to_tensor(x))


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``."""
    # this formula, as the other backends compute it (tf.nn.softsign gives 1, not NaN, at inf)
    x = to_tensor(x)
    return x / (like(1.0, x) + tf.abs(x))


# ---------------------------------------------------------------------- cross-entropy


def _target_like(target: Any, output: Any) -> Any:
    target = to_tensor(target, output.dtype)
    return target if target.dtype == output.dtype else tf.cast(target, output.dtype)


@tf.custom_gradient
def _sigmoid_cross_entropy(target: Any, logits: Any) -> Any:
    """tf's loss with its gradient in closed form, ``g * (sigmoid(z) - t)``, as on the other
    backends; derived through tf's formula, an inf loss (an infinite logit) gives inf * 0."""
    loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)

    def gradient(g: Any) -> tuple:
        return -g * logits, g * (tf.sigmoid(logits) - target)

    return loss, gradient


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Element-wise binary cross-entropy (same shape as ``output``, no reduction)."""
    output = to_tensor(output)
    target = _target_like(target, output)
    logits = output if from_logits else _recorded_logits(output, "sigmoid", -1)
    if logits is not None:
        return _sigmoid_cross_entropy(target, logits)
    eps = epsilon()
    probs = tf.clip_by_value(output, like(eps, output), like(1.0 - eps, output))
    one = like(1.0, output)
    return -(target * tf.math.log(probs) + (one - target) * tf.math.log(one - probs))


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Any:
    """Cross-entropy between one-hot (or soft) ``target`` and ``output`` along ``axis``."""
    output = to_tensor(output)
    target = _target_like(target, output)
    logits = output if from_logits else _recorded_logits(output, "softmax", axis)
    if logits is not None:
        return tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits, axis=axis)
    eps = epsilon()
    probs = output / tf.reduce_sum(output, axis=axis, keepdims=True)
    probs = tf.clip_by_value(probs, like(eps, output), like(1.0 - eps, output))
    return -tf.reduce_sum(target * tf.math.log(probs), axis=axis)


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Like ``categorical_crossentropy`` over the last axis, with integer class ``target``."""
    output = to_tensor(output)
    target = to_tensor(target, "int64")
    if target.shape.rank == output.shape.rank:
        target = tf.squeeze(target, axis=-1)
    if target.dtype not in (tf.int32, tf.int64):
        target = tf.cast(target, tf.int64)
    logits = output if from_logits else _recorded_logits(output, "softmax", -1)
    if logits is not None:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)
    eps = epsilon()
    probs = output / tf.reduce_sum(output, axis=-1, keepdims=True)
    probs = tf.clip_by_value(probs, like(eps, output), like(1.0 - eps, output))
    picked = tf.one_hot(target, tf.shape(output)[-1], dtype=output.dtype)
    return -tf.reduce_sum(picked * tf.math.log(probs), axis=-1)
