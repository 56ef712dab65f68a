"""Error messages shared by every backend, so one user mistake reads the same on all of them.

Each builder returns the exception (the caller raises it), worded the Keras-3 way: what was
expected, then ``Received: ...``. Backends translate their own names first: an op is named by
its contract name (``add``, ``dot``, ...), a dtype by its NumPy name (``"float32"``).
"""

from __future__ import annotations

from typing import Any

# the contract name of each Python operator on tensors
OPERATOR_NAMES: dict[str, str] = {
    "+": "add",
    "-": "subtract",
    "*": "multiply",
    "/": "divide",
    "**": "power",
}


def _shape_text(shape: Any) -> str:
    """``(None, 3)`` for any shape-like value (tuples, lists, TensorShapes)."""
    return str(tuple(None if d is None else int(d) for d in shape))


def mixed_dtypes_error(op_name: str, dtype_a: Any, dtype_b: Any) -> TypeError:
    """The error for two tensor operands of different dtypes in one op.

    >>> print(mixed_dtypes_error("add", "float32", "float64"))
    `add` needs operands of one dtype; cast one with K.cast first. Received: float32 and float64.
    """
    return TypeError(
        f"`{op_name}` needs operands of one dtype; cast one with K.cast first. "
        f"Received: {dtype_a} and {dtype_b}."
    )


def input_shape_error(index: int, step_name: str, expected: Any, received: Any) -> ValueError:
    """The error for a step input of the wrong rank or with a wrong fixed dimension.

    >>> print(input_shape_error(0, "predict", (None, 3), (2, 3, 1)))
    Input 0 of step 'predict' expects shape (None, 3) (None: any size). Received: an array of shape (2, 3, 1)
    """  # noqa: E501 - a doctest shows the message on one line
    return ValueError(
        f"Input {index} of step {step_name!r} expects shape {_shape_text(expected)} "
        f"(None: any size). Received: an array of shape {_shape_text(received)}"
    )


def input_count_error(step_name: str, expected: int, received: int) -> TypeError:
    """The error for calling a compiled step with the wrong number of arrays."""
    return TypeError(
        f"Step {step_name!r} takes {expected} input arrays. Received: {received} arrays"
    )


def set_value_shape_error(variable_name: Any, expected: Any, received: Any) -> ValueError:
    """The error for ``set_value`` with an array whose shape differs from the variable's."""
    return ValueError(
        f"Variable {variable_name!r} has shape {_shape_text(expected)}; `set_value` needs an "
        f"array of that shape. Received: an array of shape {_shape_text(received)}"
    )


def check_same_dtype(op_name: str, dtype_a: Any, dtype_b: Any) -> None:
    """Raise ``mixed_dtypes_error`` when two tensor operands' dtype names differ."""
    if str(dtype_a) != str(dtype_b):
        raise mixed_dtypes_error(op_name, dtype_a, dtype_b)


def check_dropout_rate(rate: Any) -> float:
    """``rate`` as a float, or the error for a dropout rate outside ``[0, 1)``.

    >>> check_dropout_rate(1)
    Traceback (most recent call last):
    ...
    ValueError: `rate` must be in [0, 1). Received: rate=1.0
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    return rate


def update_target_error(step_name: str, index: int) -> TypeError:
    """The error for an update whose target is not a variable made by ``K.variable``."""
    return TypeError(
        f"Updates of step {step_name!r} must be (variable, new_value) pairs whose variable "
        f"was made by K.variable. Received: updates[{index}][0] is not such a variable"
    )


def duplicate_update_error(step_name: str, variable_name: Any) -> ValueError:
    """The error for a step that updates one variable twice."""
    return ValueError(
        f"Step {step_name!r} may update each variable once. Received: two updates of "
        f"variable {variable_name!r}"
    )


def update_shape_error(
    step_name: str, variable_name: Any, expected: Any, received: Any
) -> ValueError:
    """The error for an update value whose static shape cannot be the variable's."""
    return ValueError(
        f"The update of variable {variable_name!r} in step {step_name!r} must have shape "
        f"{_shape_text(expected)}. Received: a value of shape {_shape_text(received)}"
    )


def shapes_conflict(expected: Any, received: Any) -> bool:
    """True when static shape ``received`` (``None``: unknown size) cannot be ``expected``."""
    expected, received = tuple(expected), tuple(received)
    return len(expected) != len(received) or any(
        e is not None and r is not None and e != r for e, r in zip(expected, received)
    )
