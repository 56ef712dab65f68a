"""``function``: trace a step once, lower it, and run it as straight-line code.

Compiling a step:

1. ``fn`` is called once on placeholders; the ops it calls build a graph.
2. ``lowering.lower`` schedules the nodes the outputs and updates need (one plan step per
   node, each running its op's spec forward) and runs the enabled lowering passes.
3. The plan becomes a straight-line Python function (its source is ``step.source``), so a
   call does no graph walking and no dictionary look-ups, and drops each intermediate after
   its last use. Constants are bound once; variables are read per call.

Updates are applied after all outputs are computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import im2col
from ..errors import (
    duplicate_update_error,
    input_count_error,
    input_shape_error,
    shapes_conflict,
    update_shape_error,
    update_target_error,
)
from .graph import (
    Constant,
    Leaf,
    Node,
    Placeholder,
    Variable,
    as_node,
    to_numpy,
    topological_order,
    xp,
)
from .lowering import current_passes, lower
from .plan import Plan, owns_fresh_buffer
from .spec import SPEC, prepare_forward

INPLACE_UPDATE_UFUNCS = {"add": xp.add, "sub": xp.subtract}


def _as_pair_list(result: Any, name: str) -> tuple[list, list]:
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise TypeError(
            f"The step function {name!r} must return (outputs, updates). Received: {result!r}"
        )
    outputs, updates = result
    if isinstance(outputs, Node) or isinstance(updates, Node):
        raise TypeError(
            f"The step function {name!r} must return a list of outputs and a list of "
            f"(variable, new_value) updates. Received: ({outputs!r}, {updates!r})"
        )
    return list(outputs or []), list(updates or [])


def _checked_updates(updates: list, name: str) -> list[tuple[Variable, Node]]:
    checked, seen = [], set()
    for index, pair in enumerate(updates):
        variable, value = pair
        if not isinstance(variable, Variable):
            raise update_target_error(name, index)
        if variable.uid in seen:
            raise duplicate_update_error(name, variable.name)
        seen.add(variable.uid)
        value = as_node(value, variable.dtype)
        if value.dtype != variable.dtype:
            from .graph import cast

            value = cast(value, variable.dtype)
        if shapes_conflict(variable.shape, value.shape):
            raise update_shape_error(name, variable.name, variable.shape, value.shape)
        checked.append((variable, value))
    return checked


class CompiledStep:
    """A traced step: call it with one array per input spec; returns a list of arrays."""

    def __init__(
        self,
        fn: Callable[..., Any],
        input_specs: Sequence[tuple[Any, str]],
        name: str | None = None,
    ) -> None:
        self.name = name or getattr(fn, "__name__", "step")
        self.specs = [(tuple(shape), np.dtype(dtype)) for shape, dtype in input_specs]
        self.placeholders = [
            Placeholder(i, shape, dtype, name=f"input_{i}")
            for i, (shape, dtype) in enumerate(self.specs)
        ]
        outputs, updates = _as_pair_list(fn(*self.placeholders), self.name)
        self.outputs = [as_node(o) for o in outputs]
        self.updates = _checked_updates(updates, self.name)
        self._checks = [
            (i, len(shape), tuple((a, d) for a, d in enumerate(shape) if d is not None))
            for i, (shape, _) in enumerate(self.specs)
        ]
        self._dtypes = [dtype for _, dtype in self.specs]
        self.passes = current_passes()
        self._build_plan()

    # ------------------------------------------------------------------------ the code
    def _build_plan(self) -> None:
        self.plan = lower(self.outputs, self.updates, self.passes)
        self.source, namespace = emit(self.plan, len(self.specs))
        exec(compile(self.source, f"<minidl step {self.name}>", "exec"), namespace)  # noqa: S102
        self._run = namespace["run"]
        self.plan_size = len(self.plan.steps)
        # kernels that share blocks out to threads: BLAS stays on one thread for the call
        self._single_blas = any(step.workers != 1 for step in self.plan.steps)

    # ------------------------------------------------------------------------- calling
    def _wrong_shape(self, index: int, shape: tuple) -> None:
        raise input_shape_error(index, self.name, self.specs[index][0], shape)

    def __call__(self, *arrays: Any) -> list[Any]:
        if len(arrays) != len(self.specs):
            raise input_count_error(self.name, len(self.specs), len(arrays))
        prepared = []
        for (index, rank, fixed), dtype, array in zip(self._checks, self._dtypes, arrays):
            if type(array) is not xp.ndarray or array.dtype != dtype:
                array = xp.asarray(array, dtype=dtype)
            shape = array.shape
            if len(shape) != rank:
                self._wrong_shape(index, shape)
            for axis, size in fixed:
                if shape[axis] != size:
                    self._wrong_shape(index, shape)
            prepared.append(array)
        if self._single_blas:
            with im2col.single_threaded_blas():
                results = self._run(*prepared)
        else:
            results = self._run(*prepared)
        if xp is not np:  # pragma: no cover
            results = [to_numpy(r) for r in results]
        return results


def function(
    fn: Callable[..., tuple[Sequence[Any], Sequence[tuple[Any, Any]]]],
    input_specs: Sequence[tuple[Any, str]],
    name: str | None = None,
) -> Callable[..., list[Any]]:
    """Trace ``fn`` once and compile it into a reusable step."""
    return CompiledStep(fn, input_specs, name)


def evaluate(x: Any) -> Any:
    """Evaluate a tensor built from constants and variables; return a NumPy array."""
    x = as_node(x)
    if isinstance(x, Leaf) and x.value is not None:
        return to_numpy(x.value).copy()
    placeholders = [n for n in topological_order([x]) if isinstance(n, Placeholder)]
    if placeholders:
        raise ValueError(
            f"`eval` can only evaluate tensors built from constants and variables; this one "
            f"depends on a step input. Received: {x!r}"
        )
    return CompiledStep(lambda: ([x], []), [], name="eval")()[0]


def _step_line(step: Any, name: str, slot: dict[int, str], bound: dict[str, Any]) -> str:
    """One line computing ``step``'s value into ``name`` (binding what it calls)."""
    node = step.node
    if isinstance(node, Placeholder):
        return f"{name} = a{node.attrs['index']}"
    if isinstance(node, Variable):
        bound[f"var_{name}"] = node
        return f"{name} = var_{name}.value"
    if isinstance(node, Constant):
        bound[f"const_{name}"] = node.value
        return f"{name} = const_{name}"
    args = [slot[p.uid] for p in step.reads]
    options = {"out": step.buffer, "workers": step.workers}
    notes = []
    if step.epilogue is not None:
        bound[f"f_{name}"] = step.epilogue.prepare(**options)
        label = f"{step.epilogue.label}, fused"
    elif step.into >= 0:
        bound[f"f_{name}"] = SPEC[node.op].into(node, step.into, step.checked)
        label = node.op
        notes.append(f"in place into {args[step.into]}")
    else:
        bound[f"f_{name}"] = prepare_forward(node, **options)
        label = node.op
    if step.buffer is not None:
        notes.append(f"into buffer {step.buffer.name}")
    if step.workers != 1:
        notes.append(f"{step.workers} threads")
    comment = ", ".join([label, *notes])
    return f"{name} = f_{name}({', '.join(args)})  # {comment}"


def emit(plan: Plan, n_inputs: int) -> tuple[str, dict[str, Any]]:
    """The source of ``run(a0, a1, ...)`` carrying out ``plan``, and the names it uses."""
    slot = {step.node.uid: f"v{i}" for i, step in enumerate(plan.steps)}
    kept = plan.kept()
    bound: dict[str, Any] = {}
    body: list[str] = []
    last_use: dict[int, int] = {}
    for position, step in enumerate(plan.steps):
        body.append(_step_line(step, slot[step.node.uid], slot, bound))
        for parent in step.reads:
            last_use[parent.uid] = position
    frees: dict[int, list[str]] = {}
    for uid, position in last_use.items():
        if uid not in kept and uid in slot:
            frees.setdefault(position, []).append(slot[uid])
    lines: list[str] = []
    for position, text in enumerate(body):
        lines.append(text)
        if position in frees:
            lines.append("del " + ", ".join(sorted(frees[position])))

    # outputs: copies where the array may be shared with a variable, a constant or a view
    output_ids = {o.uid for o in plan.outputs}
    update_ids = {v.uid for _, v in plan.updates}
    # (0-d results may be NumPy scalars: ``asarray`` / ``array`` make them 0-d arrays)
    bound["asarray"], bound["array"] = xp.asarray, xp.array
    returned, copies = [], []
    for i, node in enumerate(plan.outputs):
        name = slot[node.uid]
        if owns_fresh_buffer(node) and node.uid not in update_ids:
            returned.append(f"asarray({name})" if node.ndim == 0 else name)
        else:  # copied before any update can write into a shared buffer
            copies.append(f"out_{i} = array({name})")
            returned.append(f"out_{i}")
    # updates: all new values computed above, then written; in-place ones last
    writes = []
    for i, (variable, value) in enumerate(plan.updates):
        bound[f"target_{i}"] = variable
        if value.uid in plan.inplace_updates:
            continue
        name = slot[value.uid]
        fresh = owns_fresh_buffer(value) and value.uid not in output_ids
        if fresh and value.ndim:
            writes.append(f"target_{i}.value = {name}")
        else:
            writes.append(f"target_{i}.value = array({name})")
    for i, (_, value) in enumerate(plan.updates):
        if value.uid in plan.inplace_updates:
            bound[f"ufunc_{i}"] = INPLACE_UPDATE_UFUNCS[value.op]
            delta = slot[value.inputs[1].uid]
            writes.append(f"ufunc_{i}(target_{i}.value, {delta}, out=target_{i}.value)")
    args = ", ".join(f"a{i}" for i in range(n_inputs))
    source = [f"def run({args}):"]
    source += [f"    {line}" for line in lines + copies + writes]
    source.append(f"    return [{', '.join(returned)}]")
    return "\n".join(source), bound
