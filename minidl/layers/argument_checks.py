"""Checks of the constructor arguments every layer shares: ``dtype`` and the input shape.

>>> from minidl.layers import Dense
>>> Dense(2, dtype="int32")  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
ValueError: Invalid value for argument `dtype` of Dense layer '...': expected a float dtype, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = ("float32", "float64")


def layer_dtype(layer: Any, dtype: Any) -> str:
    """The dtype name for ``layer``: ``float32`` (default) or ``float64``; else ``ValueError``.

    Weights and computations are floating point on every backend; an integer, bool, string or
    object dtype is refused here, at construction, the same on every backend. A layer class
    that only passes its input through (``InputLayer``) sets ``_dtype_may_be_integer`` and may
    also take integer and bool dtypes.
    """
    if dtype is None:
        return "float32"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    allowed = FLOAT_DTYPES
    if getattr(layer, "_dtype_may_be_integer", False):
        allowed = (*FLOAT_DTYPES, "bool", "int8", "int16", "int32", "int64", "uint8")
    if name not in allowed or isinstance(dtype, bool):
        raise layer.invalid_argument("dtype", f"a float dtype, one of {list(allowed)}", dtype)
    return name


def batch_shape(layer: Any, shape: Any) -> tuple[int | None, ...] | None:
    """``batch_input_shape`` as a tuple of ints (or None entries); else ``ValueError``."""
    if shape is None:
        return None
    if isinstance(shape, str) or not isinstance(shape, Sequence | np.ndarray):
        raise layer.invalid_argument("batch_input_shape", "a tuple of ints or None", shape)
    dims = []
    for d in shape:
        if d is None:
            dims.append(None)
        elif isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 0:
            dims.append(int(d))  # sizes of 0 are left to the layer's own checks
        else:
            raise layer.invalid_argument(
                "batch_input_shape", "a tuple of ints or None", tuple(shape)
            )
    return tuple(dims)
