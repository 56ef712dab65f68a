"""Variables, constants, dtype and shape queries, and the conversions every op module uses."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from tensorflow.python.ops.resource_variable_ops import ResourceVariable

from ..errors import check_same_dtype, set_value_shape_error
from ._runtime import floatx, tf

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-/]")


def _default_dtype(array: np.ndarray, dtype: str | None) -> str:
    if dtype is not None:
        return np.dtype(dtype).name
    if array.dtype.kind in "fc":
        return floatx()
    return array.dtype.name


def _graph_name(name: str | None) -> str | None:
    """A name TensorFlow accepts: Keras-style ``dense/kernel:0`` becomes ``dense/kernel``."""
    if name is None:
        return None
    cleaned = _INVALID_NAME_CHARS.sub("_", name.removesuffix(":0")).strip("/")
    return cleaned or None


def is_tensor(x: Any) -> bool:
    """True for TensorFlow tensors and variables (not NumPy arrays or Python numbers)."""
    return isinstance(x, tf.Tensor | tf.Variable)


def to_tensor(x: Any, dtype: Any = None) -> Any:
    """Return ``x`` as a tensor; non-tensors take ``dtype`` (default: float -> ``floatx()``)."""
    if is_tensor(x):
        return x
    array = np.asarray(x)
    if dtype is None:
        dtype = _default_dtype(array, None)
    return tf.constant(array.astype(tf.as_dtype(dtype).as_numpy_dtype, copy=False))


def like(value: Any, reference: Any) -> Any:
    """Return ``value`` as a tensor; a Python scalar or array takes ``reference``'s dtype."""
    if is_tensor(value):
        return value
    return tf.constant(np.asarray(value, dtype=reference.dtype.as_numpy_dtype))


def checked_pair(op_name: str, x: Any, y: Any) -> tuple[Any, Any]:
    """``pair`` for a contract op: two tensors must share a dtype (``mixed_dtypes_error``)."""
    if is_tensor(x) and is_tensor(y):
        check_same_dtype(op_name, x.dtype.name, y.dtype.name)
    return pair(x, y)


def pair(x: Any, y: Any) -> tuple[Any, Any]:
    """Return ``x`` and ``y`` as tensors, converting a non-tensor to the other one's dtype."""
    if is_tensor(x):
        return x, like(y, x)
    if is_tensor(y):
        return like(x, y), y
    return to_tensor(x), to_tensor(y)


# --------------------------------------------------------------- variables and constants


def variable(value: Any, dtype: str | None = None, name: str | None = None) -> Any:
    """Create a ``tf.Variable`` holding a copy of ``value``.

    The variable is created outside any function being traced (``tf.init_scope``) and without
    going through ``tf.function``'s variable-creation hooks, so optimizers and random ops may
    create state while a step is traced without making ``tf.function`` trace it twice.
    """
    if is_tensor(value) and tf.is_symbolic_tensor(value):
        static = tf.get_static_value(value)  # a symbolic tensor: only constants have a value
        if static is None:
            raise ValueError(
                "K.variable needs a concrete initial value (a NumPy array, a constant or a "
                f"variable), not a tensor computed inside a step. Received: value={value!r}"
            )
        value = static
    with tf.init_scope():
        array = np.array(value.numpy() if is_tensor(value) else value)
        array = array.astype(_default_dtype(array, dtype), copy=False)
        return ResourceVariable(initial_value=array, name=_graph_name(name), trainable=True)


def constant(value: Any, dtype: str | None = None) -> Any:
    """Return a constant tensor holding ``value`` (float defaults to ``floatx()``)."""
    if is_tensor(value):
        return tf.identity(value) if dtype is None else tf.cast(value, dtype)
    array = np.asarray(value)
    return tf.constant(array.astype(_default_dtype(array, dtype), copy=False))


def is_variable(x: Any) -> bool:
    """Return True when ``x`` is a ``tf.Variable``."""
    return isinstance(x, tf.Variable)


def _check_variable(x: Any, what: str) -> None:
    if not is_variable(x):
        raise TypeError(f"`{what}` expects a variable created by K.variable. Received: {x!r}")


def get_value(x: Any) -> np.ndarray:
    """Return a variable's current value as a new NumPy array."""
    _check_variable(x, "get_value")
    with tf.init_scope():  # also right now when called while a step is being traced
        return np.array(x.numpy(), copy=True)


def set_value(x: Any, value: Any) -> None:
    """Assign a NumPy array to a variable of the same shape."""
    _check_variable(x, "set_value")
    array = np.asarray(value, dtype=x.dtype.as_numpy_dtype)
    expected = tuple(x.shape.as_list())
    if array.shape != expected:
        raise set_value_shape_error(x.name.removesuffix(":0"), expected, array.shape)
    with tf.init_scope():
        x.assign(array, read_value=False)


def int_shape(x: Any) -> tuple[int, ...]:
    """Return the static shape as a tuple (``None`` for sizes known only at run time)."""
    if is_tensor(x):
        return tuple(x.shape.as_list())
    return tuple(np.shape(x))


def dtype(x: Any) -> str:
    """Return the dtype name of a tensor or variable, e.g. ``"float32"``."""
    if is_tensor(x):
        return x.dtype.name
    return np.asarray(x).dtype.name


def ndim(x: Any) -> int:
    """Return the (static) rank of a tensor or variable."""
    if is_tensor(x):
        return x.shape.rank
    return np.ndim(x)


def cast(x: Any, dtype: str) -> Any:
    """Return ``x`` converted to ``dtype``; float -> int truncates toward zero."""
    return tf.cast(to_tensor(x), tf.as_dtype(dtype))


def eval(x: Any) -> np.ndarray:  # noqa: A001 - the Keras name
    """Evaluate an expression built from constants and variables; return a NumPy array."""
    if not is_tensor(x):
        return np.array(x)
    if tf.is_symbolic_tensor(x):
        raise ValueError(
            "K.eval works on values built from constants and variables outside a traced step; "
            f"inside K.function return the tensor as an output instead. Received: {x!r}"
        )
    with tf.init_scope():  # a variable can be read even while a step is being traced
        return np.array(x.numpy(), copy=True)
