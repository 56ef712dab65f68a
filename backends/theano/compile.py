"""Gradients and compiling a step into one ``pytensor.function`` with updates."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.gradient import disconnected_grad
from pytensor.graph.traversal import ancestors
from pytensor.scalar.basic import autocast_float_as

from minidl.backends import im2col
from minidl.backends.errors import (
    duplicate_update_error,
    input_count_error,
    input_shape_error,
    shapes_conflict,
    update_shape_error,
    update_target_error,
)
from minidl.backends.theano import settings
from minidl.backends.theano.random import PENDING_RNG_UPDATES
from minidl.backends.theano.variables import Shape, as_tensor, floatx, tracing_step

logger = logging.getLogger("minidl")


def gradients(loss: Any, variables: Sequence[Any]) -> list[Any]:
    """Return d(loss)/d(v) for each ``v`` (a variable or a traced input)."""
    loss = as_tensor(loss)
    if loss.ndim != 0:
        raise ValueError(
            f"`gradients` expects a scalar loss. Received: loss of rank {loss.ndim} "
            f"(shape {loss.type.shape})"
        )
    wrt = list(variables)
    if not wrt:
        return []
    grads = pytensor.grad(loss, wrt=wrt, disconnected_inputs="ignore", return_disconnected="zero")
    return [pt.cast(g, v.dtype) if g.dtype != v.dtype else g for g, v in zip(grads, wrt)]


def stop_gradient(x: Any) -> Any:
    """Return ``x`` unchanged, treated as a constant by ``gradients``."""
    return disconnected_grad(as_tensor(x))


class CompiledStep:
    """A traced and compiled step: call it with NumPy arrays, get a list of NumPy arrays.

    Attributes:
        name: the step's name.
        compile_seconds: wall-clock seconds spent tracing and compiling the step.
        first_call_seconds: seconds the first call took (NUMBA and JAX compile there; in JAX
            mode a step with ``None`` sizes compiles once per distinct input shape).
        mode: the minidl mode name it was compiled with (see ``settings``).
        pytensor_function: the underlying ``pytensor.function``.
    """

    def __init__(
        self,
        name: str,
        specs: list[tuple[tuple[int | None, ...], str]],
        compile_for: Callable[[tuple | None], Any],
        mode: str,
        per_shape: bool,
    ) -> None:
        self.name = name
        self.specs = specs
        self.mode = mode
        self.first_call_seconds: float | None = None
        self._compile_for = compile_for
        # JAX needs concrete shapes: such steps compile once per distinct input shape
        self._per_shape: dict[tuple, Any] | None = {} if per_shape else None
        started = time.perf_counter()
        self.pytensor_function = None if per_shape else compile_for(None)
        self.compile_seconds = time.perf_counter() - started
        # a step whose kernels share blocks out to threads keeps BLAS on one thread per call
        # (as the numpy backend's does: see ``im2col._SingleThreadedBlas``)
        self._single_blas = self.pytensor_function is not None and any(
            getattr(node.op, "shares_blocks_out", False)
            for node in self.pytensor_function.maker.fgraph.apply_nodes
        )

    def _check(self, index: int, value: Any) -> np.ndarray:
        shape, dtype = self.specs[index]
        array = np.asarray(value, dtype=dtype)
        if array.ndim != len(shape) or any(
            want is not None and want != got for want, got in zip(shape, array.shape)
        ):
            raise input_shape_error(index, self.name, shape, array.shape)
        return array

    def __call__(self, *arrays: Any) -> list[Any]:
        """Run the compiled step on ``arrays`` and return its outputs as NumPy arrays."""
        if len(arrays) != len(self.specs):
            raise input_count_error(self.name, len(self.specs), len(arrays))
        values = [self._check(i, a) for i, a in enumerate(arrays)]
        if self._per_shape is not None:
            shapes = tuple(v.shape for v in values)
            if shapes not in self._per_shape:
                self._per_shape[shapes] = self._compile_for(shapes)
            self.pytensor_function = self._per_shape[shapes]
        if self._single_blas:
            with im2col.single_threaded_blas():
                outputs = self._run(values)
        else:
            outputs = self._run(values)
        return [np.asarray(out) for out in outputs]

    def _run(self, values: list) -> Any:
        if self.first_call_seconds is None:  # NUMBA and JAX compile on the first call
            started = time.perf_counter()
            outputs = self.pytensor_function(*values)
            self.first_call_seconds = time.perf_counter() - started
            logger.debug(
                "theano backend: first call of step %r took %.2f s (mode %s)",
                self.name,
                self.first_call_seconds,
                self.mode,
            )
        else:
            outputs = self.pytensor_function(*values)
        return outputs


def _update_pairs(updates: Sequence[tuple[Any, Any]], name: str) -> list[tuple[Any, Any]]:
    pairs, seen = [], set()
    for index, (variable, new_value) in enumerate(updates):
        if not isinstance(variable, SharedVariable):
            raise update_target_error(name, index)
        if id(variable) in seen:
            raise duplicate_update_error(name, variable.name)
        seen.add(id(variable))
        value = as_tensor(new_value, like=variable)
        if value.dtype != variable.dtype:
            value = pt.cast(value, variable.dtype)
        shape = variable.get_value(borrow=True).shape
        if shapes_conflict(shape, value.type.shape):
            raise update_shape_error(name, variable.name, shape, value.type.shape)
        pairs.append((variable, value))
    return pairs


def _random_state_updates(roots: list[Any], pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Updates advancing the generator state of every random draw the step depends on."""
    explicit = {id(variable) for variable, _ in pairs}
    found = []
    for node in ancestors(roots):
        if id(node) in explicit:
            continue
        next_state = PENDING_RNG_UPDATES.get(node) if isinstance(node, SharedVariable) else None
        if next_state is not None:
            found.append((node, next_state))
    return found


def function(
    fn: Callable[..., tuple[Sequence[Any], Sequence[tuple[Any, Any]]]],
    input_specs: Sequence[tuple[Shape, str]],
    name: str | None = None,
) -> Callable[..., list[Any]]:
    """Trace ``fn`` once and compile it into one ``pytensor.function`` with updates."""
    step_name = name or getattr(fn, "__name__", "step")
    started = time.perf_counter()
    specs = []
    inputs = []
    for i, (shape, dtype) in enumerate(input_specs):
        shape = tuple(None if d is None else int(d) for d in shape)
        dtype = str(np.dtype(dtype))
        specs.append((shape, dtype))
        inputs.append(pt.tensor(name=f"{step_name}_input_{i}", dtype=dtype, shape=shape))
    # Python and NumPy float scalars mixed with tensors become constants of the step's float
    # dtype: float32 normally (PyTensor would keep np.float64 scalars and upcast a float32
    # step), float64 when every float input is float64 (so 0.3 stays exactly 0.3 there).
    float_inputs = {dtype for _, dtype in specs if dtype.startswith("float")}
    scalar_dtype = "float64" if float_inputs == {"float64"} else floatx()
    with (
        pytensor.config.change_flags(floatX=scalar_dtype),
        autocast_float_as(scalar_dtype),
        tracing_step(),
    ):
        outputs, updates = fn(*inputs)
    outputs = [as_tensor(o) for o in outputs]
    pairs = _update_pairs(updates, step_name)
    pairs += _random_state_updates(outputs + [value for _, value in pairs], pairs)
    mode_name = settings.mode_name()
    mode = settings.compile_mode()

    def compile_for(shapes: tuple | None) -> Any:
        """``pytensor.function`` of the traced graph, its inputs fixed to ``shapes`` if given."""
        step_inputs, givens = inputs, None
        if shapes is not None:
            step_inputs = [
                pt.tensor(name=v.name, dtype=v.dtype, shape=shape)
                for v, shape in zip(inputs, shapes)
            ]
            givens = list(zip(inputs, step_inputs))
        compiled = pytensor.function(
            step_inputs,
            outputs,
            updates=pairs,
            givens=givens,
            mode=mode,
            name=step_name,
            on_unused_input="ignore",
        )
        compiled.trust_input = True  # CompiledStep checks rank, static sizes and dtype itself
        return compiled

    per_shape = settings.MODE_ALIASES[mode_name] == "JAX" and any(
        None in shape for shape, _ in specs
    )
    step = CompiledStep(step_name, specs, compile_for, mode_name, per_shape)
    seconds = time.perf_counter() - started
    step.compile_seconds = seconds
    logger.info(
        "theano backend: compiled step %r in %.2f s (mode %s)", step_name, seconds, mode_name
    )
    return step
