"""Keras 2's ``K.function(inputs, outputs)`` over symbolic tensors, with the learning phase.

``K.function([model.input, K.learning_phase()], [layer.output])`` returns a callable that
takes a list of arrays (and 0 or 1 for the learning phase) and returns the outputs. Each
phase is compiled once, on first use, with ``training`` fixed (minidl has no run-time
training switch); state updates a layer registers in training mode (batch-norm statistics)
are not applied, as in Keras 2 without ``updates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.engine.node import KerasTensor, as_list


class LearningPhase:
    """The placeholder returned by ``K.learning_phase()`` (one shared instance)."""

    def __repr__(self) -> str:
        return "<learning_phase>"


LEARNING_PHASE = LearningPhase()


class SymbolicFunction:
    """A compiled map from symbolic input tensors to symbolic output tensors."""

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        updates: Sequence[Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        from minidl.engine.graph import plan_graph

        if updates:
            raise ValueError(
                "K.function(inputs, outputs, updates=...) is not supported in minidl: updates "
                "need backend variables. Use K.function(fn, input_specs) with a step that "
                f"returns (outputs, updates). Received: {len(updates)} updates"
            )
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to K.function: {kwargs}")
        self.inputs = as_list(inputs)
        self.outputs = as_list(outputs)
        for role, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for tensor in tensors:
                if not isinstance(tensor, KerasTensor) and tensor is not LEARNING_PHASE:
                    raise TypeError(
                        f"K.function({role}=...) takes symbolic tensors (from Input or a layer "
                        f"called on one) or K.learning_phase(). Received: {tensor!r}"
                    )
        if any(t is LEARNING_PHASE for t in self.outputs):
            raise TypeError("K.learning_phase() can only be an input of K.function.")
        self._phase_index = next(
            (i for i, t in enumerate(self.inputs) if t is LEARNING_PHASE), None
        )
        self._tensors = [t for t in self.inputs if t is not LEARNING_PHASE]
        self.name = name or "keras_function"
        self._plan = plan_graph(self._tensors, self.outputs, owner="K.function")
        self._steps: dict[int, Any] = {}

    def _step(self, phase: int) -> Any:
        if phase not in self._steps:
            from minidl.engine.graph import run_graph

            specs = [(t.shape, t.dtype) for t in self._tensors]

            def fn(*values: Any) -> tuple[list[Any], list[Any]]:
                outs = run_graph(
                    self._plan, self._tensors, self.outputs, values, training=bool(phase)
                )
                for layer in self._plan.layers:
                    layer.pop_updates()  # no `updates`: moving statistics are left alone
                return outs, []

            self._steps[phase] = K.function(fn, specs, name=f"{self.name}_phase{phase}")
        return self._steps[phase]

    def __call__(self, values: Sequence[Any]) -> list[np.ndarray]:
        """Run on a list of arrays, one per input (0 or 1 in the learning phase's place)."""
        values = as_list(values)
        if len(values) != len(self.inputs):
            raise ValueError(
                f"K.function expects {len(self.inputs)} input values (one per input). "
                f"Received: {len(values)} values"
            )
        phase = 0
        if self._phase_index is not None:
            given = values.pop(self._phase_index)
            phase = int(np.asarray(given).item()) if np.size(given) == 1 else -1
            if phase not in (0, 1):
                raise ValueError(
                    f"The learning phase must be 0 (test) or 1 (train). Received: {given!r}"
                )
        results = self._step(phase)(*values)
        return results
