"""Gradients and compiled steps: one ``tf.function`` per step, updates applied after outputs.

``function`` traces the step once with an ``input_signature`` built from the specs (``None``
dimensions stay dynamic, so a last partial batch reuses the same graph). Inside the trace the
step's outputs and every update's new value are computed first, then all assignments run
under a control dependency on them, so every update reads the values from before the step.
``MINIDL_TF_XLA=1`` compiles steps with XLA (``jit_compile=True``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._runtime import tf, xla_enabled
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


def _graph_step(fn: Callable, step_name: str) -> Callable:
    """Wrap ``fn`` so that it returns its outputs and applies its updates after them."""

    def step(*inputs: Any) -> list[Any]:
        outputs, updates = fn(*inputs)
        outputs = [tf.convert_to_tensor(out) for out in outputs]
        new_values, seen = [], set()
        for index, pair in enumerate(updates):
            var, value = pair
            if not is_variable(var):
                raise TypeError(
                    f"Updates of step {step_name!r} must be (variable, new_value) pairs. "
                    f"Received: updates[{index}][0]={var!r}"
                )
            if id(var) in seen:
                raise ValueError(
                    f"Step {step_name!r} updates variable {var.name!r} twice; each variable "
                    f"may appear once in the updates."
                )
            seen.add(id(var))
            value = tf.convert_to_tensor(value, dtype_hint=var.dtype)
            if value.dtype != var.dtype:
                value = tf.cast(value, var.dtype)
            if not var.shape.is_compatible_with(value.shape):
                raise ValueError(
                    f"The update of variable {var.name!r} in step {step_name!r} has shape "
                    f"{value.shape}, expected {var.shape}. Received: {value!r}"
                )
            new_values.append((var, value))
        # All new values (read from the pre-step state) and all outputs exist before any
        # assignment is made; the control dependency keeps that order at run time.
        with tf.control_dependencies(outputs + [value for _, value in new_values]):
            for var, value in new_values:
                var.assign(value, read_value=False)
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
            raise ValueError(
                f"Input {index} of step {self.name!r} must have shape {shape} (None: any "
                f"size). Received: an array of shape {array.shape}"
            )
        return tf.constant(array)

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        if len(arrays) != len(self.specs):
            raise TypeError(
                f"Step {self.name!r} takes {len(self.specs)} input arrays. "
                f"Received: {len(arrays)} arrays"
            )
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
