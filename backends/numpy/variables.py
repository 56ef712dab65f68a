"""Configuration, variables, constants and tensor introspection for the numpy backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import epsilon, floatx, image_data_format  # noqa: F401 (re-exported)
from ..errors import set_value_shape_error
from .compile import evaluate
from .graph import Constant, Node, Variable, as_array, as_node, default_dtype, to_numpy, xp


def backend_device() -> str:
    """Return where compiled steps run: ``"cpu"`` for NumPy, ``"gpu"`` for CuPy."""
    return "cpu" if xp is np else "gpu"


def _dtype_for(value: Any, dtype: str | None) -> np.dtype:
    return np.dtype(dtype) if dtype is not None else default_dtype(value)


def variable(value: Any, dtype: str | None = None, name: str | None = None) -> Variable:
    """Create a variable holding a copy of ``value`` (array-like)."""
    if isinstance(value, Node):
        value = evaluate(value)
    array = as_array(value, _dtype_for(value, dtype))
    return Variable(array, name=name or "variable")


def constant(value: Any, dtype: str | None = None) -> Node:
    """Return a constant tensor holding ``value`` (dtype defaults as in ``variable``)."""
    if isinstance(value, Node):
        return as_node(value) if dtype is None else Constant(as_array(evaluate(value), dtype))
    return Constant(as_array(value, _dtype_for(value, dtype)))


def is_variable(x: Any) -> bool:
    """Return True when ``x`` is a variable created by this backend's ``variable``."""
    return isinstance(x, Variable)


def _require_variable(x: Any, what: str) -> Variable:
    if not isinstance(x, Variable):
        raise TypeError(f"`{what}` expects a variable created with K.variable. Received: {x!r}")
    return x


def get_value(x: Any) -> np.ndarray:
    """Return a variable's current value as a new NumPy array (a copy, never a view)."""
    return np.array(to_numpy(_require_variable(x, "get_value").value), copy=True)


def set_value(x: Any, value: Any) -> None:
    """Assign a NumPy array to a variable; ``value`` must have the variable's shape."""
    variable = _require_variable(x, "set_value")
    array = np.asarray(value)
    if array.shape != variable.shape:
        raise set_value_shape_error(variable.name, variable.shape, array.shape)
    variable.value = xp.array(array, dtype=variable.dtype)


def int_shape(x: Any) -> tuple:
    """Return the static shape of a tensor as a tuple (``None`` for run-time sizes)."""
    if isinstance(x, Node):
        return x.shape
    return tuple(np.shape(x))


def dtype(x: Any) -> str:
    """Return the dtype name (``"float32"``, ``"int64"``, ...) of a tensor or variable."""
    if isinstance(x, Node):
        return x.dtype.name
    return np.asarray(x).dtype.name


def ndim(x: Any) -> int:
    """Return the rank of a tensor or variable (static on every backend)."""
    return len(int_shape(x))


def eval(x: Any) -> np.ndarray:  # noqa: A001 - the Keras name
    """Evaluate a tensor built only from constants and variables; return a NumPy array."""
    return np.asarray(evaluate(x))
