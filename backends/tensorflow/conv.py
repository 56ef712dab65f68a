"""Convolution and pooling on TensorFlow tensors (NHWC, HWIO kernels)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from minidl.backends import shapes
from minidl.backends.dilation import check_dilation

from ._runtime import tf
from .variables import like, to_tensor


def conv2d(
    x: Any,
    kernel: Any,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation_rate: tuple[int, int] = (1, 1),
) -> Any:
    """2-D cross-correlation of NHWC ``x`` with an HWIO ``kernel`` (``tf.nn.conv2d``)."""
    x = to_tensor(x)
    kernel = to_tensor(kernel, x.dtype)
    strides = shapes.normalize_tuple(strides, 2, "strides")
    padding = shapes.normalize_padding(padding).upper()
    rate = check_dilation(dilation_rate, strides)
    if rate != (1, 1):
        return tf.nn.convolution(x, kernel, padding=padding, dilations=rate)
    return tf.nn.conv2d(x, kernel, strides=(1, *strides, 1), padding=padding)


def pool2d(
    x: Any,
    pool_size: tuple[int, int],
    strides: tuple[int, int] | None = None,
    padding: str = "valid",
    pool_mode: str = "max",
) -> Any:
    """Max or average pooling of an NHWC tensor; ``"same"`` padding cells are ignored."""
    x = to_tensor(x)
    pool_size = shapes.normalize_tuple(pool_size, 2, "pool_size")
    strides = pool_size if strides is None else shapes.normalize_tuple(strides, 2, "strides")
    padding = shapes.normalize_padding(padding).upper()
    if pool_mode == "max":
        if not x.dtype.is_floating:
            return tf.nn.max_pool2d(x, pool_size, strides, padding)
        return _exact_max_pool(x, _Window((1, *pool_size, 1), (1, *strides, 1), padding))
    if pool_mode == "avg":
        return tf.nn.avg_pool2d(x, pool_size, strides, padding)
    raise ValueError(f"`pool_mode` must be 'max' or 'avg'. Received: pool_mode={pool_mode!r}")


class _Window(NamedTuple):
    """A pooling window in tf's NHWC attribute form."""

    ksize: tuple[int, int, int, int]
    strides: tuple[int, int, int, int]
    padding: str

    def max_pool(self, x: Any) -> Any:
        return tf.nn.max_pool2d(x, self.ksize, self.strides, self.padding)

    def route(self, x: Any, pooled: Any, grad: Any) -> Any:
        """Each window's ``grad`` to the window's first maximum in ``x`` (tf's kernel)."""
        return tf.raw_ops.MaxPoolGrad(
            orig_input=x,
            orig_output=pooled,
            grad=grad,
            ksize=self.ksize,
            strides=self.strides,
            padding=self.padding,
        )


def _exact_max_pool(x: Any, window: _Window) -> Any:
    """Max-pooling with NumPy's NaN and -inf values and the interface's gradient rule.

    tf's max-pool skips NaN and gives the lowest finite value for a window of -inf; NumPy's
    max is NaN for a window holding NaN and -inf for a window of -inf. The exact values and
    gradients (``_exact_values``, ``_exact_gradient``) run under a ``tf.cond`` that one sum
    over ``x`` decides, so data without NaN or inf takes tf's kernels alone. Those kernels
    stay outside the ``tf.cond``: inside a branch TensorFlow runs its plain ``MaxPoolGrad``
    instead of oneDNN's, about 5x slower (ConvLarge's step ran at 0.68x of raw TF's).
    """

    @tf.custom_gradient
    def max_pool(x: Any) -> Any:
        pooled = window.max_pool(x)
        wide = x if x.dtype.size >= 4 else tf.cast(x, tf.float32)  # a sum that won't overflow
        special = tf.logical_not(tf.math.is_finite(tf.reduce_sum(wide)))
        y = tf.cond(special, lambda: _exact_values(x, pooled, window), lambda: pooled)

        def gradient(g: Any) -> Any:
            routed = window.route(x, pooled, g)
            return tf.cond(special, lambda: _exact_gradient(x, pooled, g, window), lambda: routed)

        return y, gradient

    return max_pool(x)


def _special_windows(x: Any, window: _Window) -> tuple[Any, Any]:
    """Which windows hold a NaN, and which hold only -inf (and padding)."""
    nan_cells = tf.cast(tf.math.is_nan(x), x.dtype)
    above_neg_inf = tf.cast(x > like(-np.inf, x), x.dtype)
    zero = like(0.0, x)
    return window.max_pool(nan_cells) > zero, tf.equal(window.max_pool(above_neg_inf), zero)


def _exact_values(x: Any, pooled: Any, window: _Window) -> Any:
    """NaN for a window holding NaN, -inf for a window of -inf, else tf's max."""
    nan_windows, neg_inf_windows = _special_windows(x, window)
    y = tf.where(neg_inf_windows, like(-np.inf, x), pooled)
    return tf.where(nan_windows, like(np.nan, x), y)


def _exact_gradient(x: Any, pooled: Any, g: Any, window: _Window) -> Any:
    """The interface's max-pool gradient where ``x`` holds NaN or inf.

    A window holding NaN sends nothing to its numbers and NaN to its NaN cells (the slope at
    NaN). A window of -inf sends ``g`` to its first cell in row-major order, padding counted
    as -inf as on numpy and theano (a ``"same"`` window that starts in the padding sends
    nothing). Any other window sends ``g`` to its first maximum (tf's kernel).
    """
    nan_windows, neg_inf_windows = _special_windows(x, window)
    zero = tf.zeros_like(g)
    grad = window.route(x, pooled, tf.where(nan_windows | neg_inf_windows, zero, g))
    grad = grad + _first_cells(x, tf.where(neg_inf_windows & ~nan_windows, g, zero), window)
    # as on numpy and theano: when some window holds NaN, every NaN cell gets NaN
    return tf.where(tf.math.is_nan(x) & tf.reduce_any(nan_windows), x, grad)


def _first_cells(x: Any, g: Any, window: _Window) -> Any:
    """Each window's ``g`` to its first cell in row-major order, padding cells included."""
    ones = tf.ones_like(x)  # every cell ties
    if window.padding == "VALID":
        return window.route(ones, window.max_pool(ones), g)
    pads = [[0, 0], *(_same_pads(tf.shape(x)[axis], window, axis) for axis in (1, 2)), [0, 0]]
    padded = tf.pad(ones, pads, constant_values=1)
    valid = window._replace(padding="VALID")
    routed = valid.route(padded, valid.max_pool(padded), g)
    return tf.slice(routed, [0, pads[1][0], pads[2][0], 0], tf.shape(x))


def _same_pads(size: Any, window: _Window, axis: int) -> list:
    """TensorFlow's ``"same"`` padding (before, after) of one spatial axis of ``size``."""
    kernel, stride = window.ksize[axis], window.strides[axis]
    total = tf.maximum(((size + stride - 1) // stride - 1) * stride + kernel - size, 0)
    return [total // 2, total - total // 2]
