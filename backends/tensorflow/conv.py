"""Convolution and pooling on TensorFlow tensors (NHWC, HWIO kernels)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.backends import shapes
from minidl.backends.dilation import check_dilation

from ._runtime import tf
from .math import nan_slope_at_nan
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

        def exact_max_pool() -> Any:
            # tf's max-pool skips NaN and gives the lowest finite value for a window of -inf;
            # NumPy's max is NaN for a window holding NaN and -inf for a window of -inf. A NaN
            # window sends no gradient to its other cells (tf.where); its NaN cells get NaN.
            marked = nan_slope_at_nan(x)
            pooled = tf.nn.max_pool2d(marked, pool_size, strides, padding)
            above_neg_inf = tf.cast(marked > like(-np.inf, x), x.dtype)
            not_all_neg_inf = tf.nn.max_pool2d(above_neg_inf, pool_size, strides, padding)
            pooled = tf.where(tf.stop_gradient(not_all_neg_inf) > 0, pooled, like(-np.inf, x))
            nan_cells = tf.cast(tf.math.is_nan(marked), x.dtype)
            has_nan = tf.stop_gradient(tf.nn.max_pool2d(nan_cells, pool_size, strides, padding))
            return tf.where(has_nan > 0, like(np.nan, x), pooled)

        # One reduction decides; data without NaN or -inf skips the exact pool's extra work.
        special = tf.math.is_nan(x) | tf.equal(x, like(-np.inf, x))
        return tf.cond(
            tf.reduce_any(special),
            exact_max_pool,
            lambda: tf.nn.max_pool2d(x, pool_size, strides, padding),
        )

    if pool_mode == "avg":
        return tf.nn.avg_pool2d(x, pool_size, strides, padding)
    raise ValueError(f"`pool_mode` must be 'max' or 'avg'. Received: pool_mode={pool_mode!r}")
