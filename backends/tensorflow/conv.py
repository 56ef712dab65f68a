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
        x = nan_slope_at_nan(x)
        pooled = tf.nn.max_pool2d(x, pool_size, strides, padding)
        # tf's max-pool skips NaN; NumPy's max of a window holding NaN is NaN. Such a window
        # sends no gradient to its other cells (tf.where), and its NaN cells get NaN.
        nan_cells = tf.cast(tf.math.is_nan(x), x.dtype)
        has_nan = tf.stop_gradient(tf.nn.max_pool2d(nan_cells, pool_size, strides, padding))
        return tf.where(has_nan > 0, like(np.nan, x), pooled)
    if pool_mode == "avg":
        return tf.nn.avg_pool2d(x, pool_size, strides, padding)
    raise ValueError(f"`pool_mode` must be 'max' or 'avg'. Received: pool_mode={pool_mode!r}")
