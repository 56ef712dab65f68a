"""Config, variables, constants, tensor conversion and the operators' dtype rule."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.tensor.variable import _tensor_py_operators

from minidl.backends.config import (  # noqa: F401 (re-exported to this package)
    EPSILON,
    FLOATX,
    epsilon,
    floatx,
    image_data_format,
)
from minidl.backends.errors import OPERATOR_NAMES, check_same_dtype, set_value_shape_error
from minidl.backends.theano import settings

Shape = tuple
Axis = int | tuple[int, ...] | None

_FLOATX, _EPSILON = FLOATX, EPSILON  # the names this package's modules import

# --------------------------------------------------------------------------- config


def backend_device() -> str:
    """Return where compiled steps run: ``"gpu"`` in JAX mode on a GPU, else ``"cpu"``."""
    return settings.device()


# --------------------------------------------------------------- variables and constants


def _as_array(value: Any, dtype: str | None) -> np.ndarray:
    """``value`` as a new NumPy array; floats default to float32, other dtypes are kept."""
    if isinstance(value, Variable):
        value = eval(value)
    array = np.array(value, copy=True)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype.kind == "f" or array.dtype == object:
        return array.astype(_FLOATX, copy=False)
    return array


def variable(value: Any, dtype: str | None = None, name: str | None = None) -> Any:
    """Create a PyTensor shared variable holding a copy of ``value``."""
    array = _as_array(value, dtype)
    return pytensor.shared(array, name=name, shape=array.shape)


def constant(value: Any, dtype: str | None = None) -> Any:
    """Return a constant tensor holding ``value`` (dtype defaults as in ``variable``)."""
    return pt.constant(_as_array(value, dtype))


def is_variable(x: Any) -> bool:
    """Return True when ``x`` is a variable created by this backend's ``variable``."""
    return isinstance(x, SharedVariable)


def _check_variable(x: Any, what: str) -> None:
    if not is_variable(x):
        raise TypeError(
            f"`{what}` expects a variable created by `variable`. Received: {type(x).__name__}"
        )


def get_value(x: Any) -> Any:
    """Return a variable's current value as a new NumPy array."""
    _check_variable(x, "get_value")
    return np.array(x.get_value(borrow=True), copy=True)


def set_value(x: Any, value: Any) -> None:
    """Assign a NumPy array to a variable; ``value`` must have the variable's shape."""
    _check_variable(x, "set_value")
    current = x.get_value(borrow=True)
    array = np.asarray(value)
    if array.shape != current.shape:
        raise set_value_shape_error(x.name, current.shape, array.shape)
    x.set_value(np.array(array, dtype=current.dtype, copy=True), borrow=True)


def int_shape(x: Any) -> tuple[int, ...]:
    """Return the static shape of a variable, constant or tensor (``None`` where unknown)."""
    if isinstance(x, SharedVariable):
        return tuple(x.get_value(borrow=True).shape)
    if isinstance(x, Constant):
        return tuple(np.shape(x.data))
    if isinstance(x, Variable):
        return tuple(x.type.shape)
    return tuple(np.shape(x))


def dtype(x: Any) -> str:
    """Return the dtype name of a tensor or variable."""
    if isinstance(x, Variable):
        return str(x.dtype)
    return str(np.asarray(x).dtype)


def ndim(x: Any) -> int:
    """Return the rank of a tensor or variable."""
    if isinstance(x, Variable):
        return int(x.ndim)
    return int(np.ndim(x))


def cast(x: Any, dtype: str) -> Any:
    """Return ``x`` converted to ``dtype``; float->int truncates toward zero."""
    return pt.cast(as_tensor(x), str(np.dtype(dtype)))


def eval(x: Any) -> Any:  # noqa: A001 - the Keras name
    """Evaluate a tensor built only from constants and variables; return a NumPy array."""
    if isinstance(x, SharedVariable):
        return get_value(x)
    if isinstance(x, Constant):
        return np.array(x.data, copy=True)
    tensor = as_tensor(x)
    compiled = pytensor.function([], tensor, mode=settings.compile_mode_named("PY"))
    return np.asarray(compiled())


def as_tensor(x: Any, like: Any = None) -> Any:
    """``x`` as a PyTensor variable; a Python scalar takes ``like``'s dtype (else floatX)."""
    if isinstance(x, Variable):
        return x
    if isinstance(like, Variable) and isinstance(x, int | float) and not isinstance(x, bool):
        target = like.dtype
        if target == "bool" or (np.dtype(target).kind in "iu" and not float(x).is_integer()):
            target = _FLOATX if isinstance(x, float) else "int64"
        return pt.constant(np.asarray(x, dtype=target))
    return pt.constant(_as_array(x, None))


def _pair(op_name: str, x: Any, y: Any) -> tuple[Any, Any]:
    """Both operands as tensors, a Python scalar taking the other operand's dtype.

    Two tensors must share a dtype (``mixed_dtypes_error`` names ``op_name``).
    """
    if isinstance(x, Variable) and isinstance(y, Variable):
        check_same_dtype(op_name, x.dtype, y.dtype)
    if isinstance(x, Variable):
        return x, as_tensor(y, like=x)
    if isinstance(y, Variable):
        return as_tensor(x, like=y), y
    return as_tensor(x), as_tensor(y)


_tracing_depth = 0


@contextlib.contextmanager
def tracing_step() -> Iterator[None]:
    """Mark that minidl is tracing a step: the operator dtype rule applies only then."""
    global _tracing_depth
    _tracing_depth += 1
    try:
        yield
    finally:
        _tracing_depth -= 1


def _dtype_checked(symbol: str, original: Callable) -> Callable:
    """Wrap a PyTensor operator so two tensors of different dtypes raise our TypeError.

    PyTensor would upcast silently. The rule applies only while minidl traces a step (plain
    PyTensor code in the same process keeps PyTensor's behaviour) and only to calls from
    outside PyTensor: its own rewrites and gradients mix dtypes on purpose.
    """
    op_name = OPERATOR_NAMES[symbol]

    def operator(self: Any, other: Any) -> Any:
        if (
            _tracing_depth
            and isinstance(other, Variable)
            and getattr(other, "dtype", self.dtype) != self.dtype
            and not sys._getframe(1).f_globals.get("__name__", "").startswith("pytensor")
        ):
            check_same_dtype(op_name, self.dtype, other.dtype)
        return original(self, other)

    operator.__wrapped__ = original
    return operator


def _install_dtype_rule() -> None:
    """Apply the contract's dtype rule to ``+ - * / **`` on PyTensor tensors (once)."""
    methods = {"+": "__add__", "-": "__sub__", "*": "__mul__", "/": "__truediv__", "**": "__pow__"}
    for symbol, method in methods.items():
        original = getattr(_tensor_py_operators, method)
        if not hasattr(original, "__wrapped__"):
            setattr(_tensor_py_operators, method, _dtype_checked(symbol, original))


_install_dtype_rule()
