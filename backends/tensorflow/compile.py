"""Gradients and compiled steps: one ``tf.function`` per step, updates applied after outputs.

``function`` traces the step once with an ``input_signature`` built from the specs (``None``
dimensions stay dynamic, so a last partial batch reuses the same graph). Inside the trace the
step's outputs and every update's new value are computed first, then all assignments run
under a control dependency on them, so every update reads the values from before the step.
``MINIDL_TF_XLA=1`` compiles steps with XLA (``jit_compile=True``). Updates of the form
``v - d``, ``v - a * d`` and ``v + d`` are written in place (``_in_place_write``;
``MINIDL_TF_IN_PLACE=0`` writes every update with a plain assign).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from ..errors import (
    duplicate_update_error,
    input_count_error,
    input_shape_error,
    mixed_dtypes_error,
    shapes_conflict,
    update_shape_error,
    update_target_error,
)
from ._runtime import in_place_enabled, tf, xla_enabled
from .variables import is_variable

logger = logging.getLogger("minidl")


def gradients(loss: Any, variables: Sequence[Any]) -> list[Any]:
    """Return d(loss)/d(v) for each variable or traced input ``v`` (zeros when unconnected)."""
    if tf.executing_eagerly():
        raise RuntimeError(
            "K.gradients needs the symbolic graph of a step: call it inside the function "
            "passed to K.function (TensorFlow records no gradients for eager values)."
        )
    if loss.shape.rank not in (0, None):
        raise ValueError(f"`gradients` expects a scalar loss. Received: loss.shape={loss.shape}")
    variables = list(variables)
    try:
        grads = tf.gradients(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    except LookupError as err:  # TensorFlow's "No gradient defined for operation ..."
        raise NotImplementedError(f"No gradient rule for an op on the path: {err}") from None
    return [tf.convert_to_tensor(g) for g in grads]


def stop_gradient(x: Any) -> Any:
    """Return ``x`` unchanged, treated as a constant by ``gradients``."""
    return tf.stop_gradient(x)


def _normalize_spec(spec: tuple, index: int) -> tuple[tuple[int | None, ...], np.dtype]:
    try:
        shape, dtype = spec
        shape = tuple(None if d is None else int(d) for d in shape)
        return shape, np.dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(
            f"Each input spec must be a (shape, dtype) pair such as ((None, 784), 'float32'). "
            f"Received: input_specs[{index}]={spec!r}"
        ) from None


# TensorFlow's own messages for ``+ - * / **`` on tensors of two dtypes, and its op names
_OP_DTYPE_MISMATCH = re.compile(
    r"Input 'y' of '(\w+)' Op has type (\w+) that does not match type (\w+) of argument 'x'"
)
_DIV_DTYPE_MISMATCH = re.compile(
    r"`x` and `y` must have the same dtype, got tf\.(\w+) != tf\.(\w+)"
)
_OPERATOR_OPS = {
    "AddV2": "add",
    "Sub": "subtract",
    "Mul": "multiply",
    "RealDiv": "divide",
    "Div": "divide",
    "Pow": "power",
}


def _as_mixed_dtypes_error(err: TypeError) -> TypeError | None:
    """minidl's ``mixed_dtypes_error`` for TensorFlow's error from an operator, else None.

    ``+ - * / **`` on two TensorFlow tensors are TensorFlow's own operators, so the dtype rule
    is enforced by rewording the TypeError they raise while the step is traced.
    """
    text = str(err)
    found = _OP_DTYPE_MISMATCH.search(text)
    if found and found.group(1) in _OPERATOR_OPS:
        return mixed_dtypes_error(_OPERATOR_OPS[found.group(1)], found.group(3), found.group(2))
    found = _DIV_DTYPE_MISMATCH.search(text)
    if found:
        return mixed_dtypes_error("divide", found.group(1), found.group(2))
    return None


def _reads(value: Any, var: Any) -> bool:
    """Whether ``value`` is a read of ``var`` in the graph being traced."""
    handle = getattr(var, "handle", None)
    if value.op.type != "ReadVariableOp" or handle is None:
        return False
    handles = {id(outer): inner for outer, inner in value.graph.captures}
    return handles.get(id(handle)) is value.op.inputs[0]


def _in_place_write(var: Any, value: Any) -> tuple[list[Any], Callable[[], Any]]:
    """The tensors that writing ``value`` to ``var`` reads, and the write itself.

    A lowering beside the spec (``MINIDL_TF_IN_PLACE=0`` switches it off): ``var - d``
    becomes ``var.assign_sub(d)``, ``var - a * d`` with a scalar ``a`` (SGD's ``p - lr * g``)
    TensorFlow's ``ResourceApplyGradientDescent``, and ``var + d`` or ``d + var``
    ``var.assign_add(d)`` (momentum's ``p + v``). TensorFlow's update kernels compute the same
    IEEE ``v - a * d`` in the variable's buffer, without new tensors of the variable's size
    and a copy. A ``d`` of another shape (broadcast) keeps the plain write.
    """
    op, shape = value.op, var.shape
    lower = in_place_enabled() and shape.is_fully_defined() and not tf.executing_eagerly()
    if lower and not tf.distribute.has_strategy():
        if op.type == "Sub" and _reads(op.inputs[0], var) and op.inputs[1].shape == shape:
            delta = op.inputs[1]
            if delta.op.type == "Mul":
                for scale, grad in (delta.op.inputs, delta.op.inputs[::-1]):
                    if scale.shape.rank == 0 and grad.shape == shape:
                        apply = tf.raw_ops.ResourceApplyGradientDescent
                        return [scale, grad], partial(
                            apply, var=var.handle, alpha=scale, delta=grad
                        )
            return [delta], partial(var.assign_sub, delta, read_value=False)
        if op.type in ("AddV2", "Add"):
            for read, delta in (op.inputs, op.inputs[::-1]):
                if _reads(read, var) and delta.shape == shape:
                    return [delta], partial(var.assign_add, delta, read_value=False)
    return [value], partial(var.assign, value, read_value=False)


def _graph_step(fn: Callable, step_name: str) -> Callable:
    """Wrap ``fn`` so that it returns its outputs and applies its updates after them."""

    def step(*inputs: Any) -> list[Any]:
        try:
            outputs, updates = fn(*inputs)
        except TypeError as err:
            mixed = _as_mixed_dtypes_error(err)
            if mixed is None:
                raise
            raise mixed from None
        outputs = [tf.convert_to_tensor(out) for out in outputs]
        new_values, seen = [], set()
        for index, pair in enumerate(updates):
            var, value = pair
            if not is_variable(var):
                raise update_target_error(step_name, index)
            var_name = var.name.removesuffix(":0")
            if id(var) in seen:
                raise duplicate_update_error(step_name, var_name)
            seen.add(id(var))
            value = tf.convert_to_tensor(value, dtype_hint=var.dtype)
            if value.dtype != var.dtype:
                value = tf.cast(value, var.dtype)
            if value.shape.rank is not None and shapes_conflict(var.shape, value.shape):
                raise update_shape_error(step_name, var_name, var.shape, value.shape)
            new_values.append((var, value))
        writes = [_in_place_write(var, value) for var, value in new_values]
        # All new values (read from the pre-step state) and all outputs exist before any
        # assignment is made; the control dependency keeps that order at run time.
        with tf.control_dependencies(outputs + [t for reads, _ in writes for t in reads]):
            for _, write in writes:
                write()
        return outputs

    step.__name__ = re.sub(r"\W", "_", step_name)
    return step


class CompiledStep:
    """A traced step: call it with NumPy arrays, get a list of NumPy arrays back."""

    def __init__(self, fn: Callable, input_specs: Sequence[tuple], name: str | None) -> None:
        self.name = name or getattr(fn, "__name__", "step")
        self.specs = [_normalize_spec(spec, i) for i, spec in enumerate(input_specs)]
        self.xla = xla_enabled()
        signature = [
            tf.TensorSpec(shape, tf.as_dtype(dtype), name=f"input_{i}")
            for i, (shape, dtype) in enumerate(self.specs)
        ]
        traced = tf.function(
            _graph_step(fn, self.name),
            input_signature=signature,
            autograph=False,
            jit_compile=self.xla or None,
        )
        self.concrete = traced.get_concrete_function()
        self._fixed_dims = [
            [(axis, size) for axis, size in enumerate(shape) if size is not None]
            for shape, _ in self.specs
        ]
        logger.debug("compiled tensorflow step %r (xla=%s)", self.name, self.xla)

    def _convert(self, index: int, value: Any) -> Any:
        shape, dtype = self.specs[index]
        array = np.asarray(value, dtype=dtype)
        if array.ndim != len(shape) or any(
            array.shape[axis] != size for axis, size in self._fixed_dims[index]
        ):
            raise input_shape_error(index, self.name, shape, array.shape)
        return tf.constant(array)

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        if len(arrays) != len(self.specs):
            raise input_count_error(self.name, len(self.specs), len(arrays))
        outputs = self.concrete(*[self._convert(i, a) for i, a in enumerate(arrays)])
        # ``numpy()`` copies, so the caller owns the arrays; a 0-d result comes back as a
        # NumPy scalar, which ``asarray`` turns into a 0-d array.
        return [np.asarray(out.numpy()) for out in outputs]


def function(
    fn: Callable[..., tuple[Sequence[Any], Sequence[tuple[Any, Any]]]],
    input_specs: Sequence[tuple[tuple, str]],
    name: str | None = None,
) -> Callable[..., list[Any]]:
    """Trace ``fn`` once into a ``tf.function`` and return a callable over NumPy arrays."""
    return CompiledStep(fn, input_specs, name)
