"""``function``: trace a step once and run it as a static plan of prepared callables.

Compiling a step:

1. ``fn`` is called once on placeholders; the ops it calls build a graph.
2. Only the nodes the outputs and updates need are kept, in an (iterative) topological order.
3. Each kept node becomes one *plan step*: the callable its op prepared for it, the slot it
   writes and the slots it reads. Constants are bound once; variables are read per call.
4. The plan is lowered to a straight-line Python function (its source is ``step.source``),
   so a call does no graph walking and no dictionary look-ups, and frees each intermediate
   after its last use.

Updates are applied after all outputs are computed. An SGD-style update ``v - delta`` (or
``v + delta``) whose delta is a fresh array is done in place on the variable's buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import (
    duplicate_update_error,
    input_count_error,
    input_shape_error,
    shapes_conflict,
    update_shape_error,
    update_target_error,
)
from .fusion import find_epilogues
from .graph import (
    FORWARD,
    INPLACE,
    VIEW_OPS,
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

INPLACE_UPDATE_UFUNCS = {"add": xp.add, "sub": xp.subtract}


def owns_fresh_buffer(node: Node) -> bool:
    """True when ``node``'s run-time value is an array no other slot or variable shares."""
    return not isinstance(node, Leaf) and node.op not in VIEW_OPS


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
            from .ops_math import cast

            value = cast(value, variable.dtype)
        if shapes_conflict(variable.shape, value.shape):
            raise update_shape_error(name, variable.name, variable.shape, value.shape)
        checked.append((variable, value))
    return checked


def _inplace_safety(shape: tuple, others: tuple) -> str | None:
    """Whether broadcasting ``others`` against ``shape`` keeps ``shape`` as the result.

    Returns ``"safe"``, ``"checked"`` (two run-time sizes meet: check the shapes per call) or
    None (the result may be larger, never write in place).
    """
    safety = "safe"
    for other in others:
        if other.ndim > len(shape):
            return None
        for mine, theirs in zip(shape[len(shape) - other.ndim :], other.shape):
            if theirs == 1 or (theirs is not None and theirs == mine):
                continue
            if theirs is None and mine is None:
                safety = "checked"
            elif theirs is not None:
                return None
    return safety


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
        self._build_plan()

    # ----------------------------------------------------------------- plan building
    def _inplace_updates(self, consumers: dict[int, int], roots_out: set[int]) -> set[int]:
        """Update values that can be computed in place on their variable's buffer."""
        chosen = set()
        for variable, value in self.updates:
            if (
                value.op in INPLACE_UPDATE_UFUNCS
                and value.inputs[0] is variable
                and value.shape == variable.shape
                and consumers.get(value.uid, 0) == 0
                and value.uid not in roots_out
                and owns_fresh_buffer(value.inputs[1])
                and value.inputs[1].dtype == variable.dtype
            ):
                chosen.add(value.uid)
        return chosen

    @staticmethod
    def _prepare(node: Node, consumers: dict[int, int], kept: set[int]) -> tuple[Callable, int]:
        """The run-time callable of ``node`` and the input it writes into (-1: a new array)."""
        prepare_inplace = INPLACE.get(node.op)
        if prepare_inplace is not None and node.ndim > 0:
            for index, parent in enumerate(node.inputs):
                if (
                    owns_fresh_buffer(parent)
                    and consumers.get(parent.uid, 0) == 1
                    and parent.uid not in kept
                    and parent.dtype == node.dtype
                    and parent.shape == node.shape
                ):
                    others = node.inputs[:index] + node.inputs[index + 1 :]
                    safety = _inplace_safety(parent.shape, others)
                    if safety is not None:
                        return prepare_inplace(node, index, safety == "checked"), index
        prepare = FORWARD.get(node.op)
        if prepare is None:
            raise NotImplementedError(f"The numpy backend has no forward for op {node.op!r}.")
        return prepare(node), -1

    def _build_plan(self) -> None:
        update_values = [value for _, value in self.updates]
        order = topological_order(self.outputs + update_values)
        consumers: dict[int, int] = {}
        for node in order:
            for parent in node.inputs:
                consumers[parent.uid] = consumers.get(parent.uid, 0) + 1
        output_ids = {o.uid for o in self.outputs}
        inplace = self._inplace_updates(consumers, output_ids)
        for node in order:
            if node.uid in inplace:
                for parent in node.inputs:  # the in-place update no longer reads it early
                    consumers[parent.uid] -= 1
        roots = output_ids | {v.uid for v in update_values}
        order = [  # drop in-place updates and leaves only they read (no dead slot loads)
            n
            for n in order
            if n.uid not in inplace
            and (n.uid in roots or consumers.get(n.uid, 0) or not isinstance(n, Leaf))
        ]

        # never overwritten nor freed early: outputs, update values, in-place update deltas
        kept = output_ids | {v.uid for v in update_values}
        kept |= {v.inputs[1].uid for v in update_values if v.uid in inplace}
        epilogues = find_epilogues(order, consumers, kept)
        fused_away = {n.uid for e in epilogues.values() for n in (e.conv, *e.chain[:-1])}
        order = [n for n in order if n.uid not in fused_away]
        slot = {node.uid: f"v{i}" for i, node in enumerate(order)}
        bound: dict[str, Any] = {}
        lines: list[str] = []
        last_use: dict[int, int] = {}
        body: list[tuple[Node, str]] = []
        for node in order:
            name = slot[node.uid]
            if isinstance(node, Placeholder):
                text = f"{name} = a{node.attrs['index']}"
            elif isinstance(node, Variable):
                bound[f"var_{name}"] = node
                text = f"{name} = var_{name}.value"
            elif isinstance(node, Constant):
                bound[f"const_{name}"] = node.value
                text = f"{name} = const_{name}"
            elif node.uid in epilogues:
                fused = epilogues[node.uid]
                bound[f"f_{name}"] = fused.prepare()
                args = [slot[p.uid] for p in fused.inputs]
                ops = " + ".join(n.op for n in (fused.conv, *fused.chain))
                text = f"{name} = f_{name}({', '.join(args)})  # {ops}, fused"
            else:
                bound[f"f_{name}"], target = self._prepare(node, consumers, kept)
                args = [slot[p.uid] for p in node.inputs]
                note = f", in place into {args[target]}" if target >= 0 else ""
                text = f"{name} = f_{name}({', '.join(args)})  # {node.op}{note}"
            body.append((node, text))
            reads = epilogues[node.uid].inputs if node.uid in epilogues else node.inputs
            for parent in reads:
                last_use[parent.uid] = len(body) - 1
        frees: dict[int, list[str]] = {}
        for uid, position in last_use.items():
            if uid not in kept and uid in slot:
                frees.setdefault(position, []).append(slot[uid])
        for position, (_, text) in enumerate(body):
            lines.append(text)
            if position in frees:
                lines.append("del " + ", ".join(sorted(frees[position])))

        # outputs: copies where the array may be shared with a variable, a constant or a view
        update_ids = {v.uid for v in update_values}
        # (0-d results may be NumPy scalars: ``asarray`` / ``array`` make them 0-d arrays)
        bound["asarray"], bound["array"] = xp.asarray, xp.array
        returned, copies = [], []
        for i, node in enumerate(self.outputs):
            name = slot[node.uid]
            if owns_fresh_buffer(node) and node.uid not in update_ids:
                returned.append(f"asarray({name})" if node.ndim == 0 else name)
            else:  # copied before any update can write into a shared buffer
                copies.append(f"out_{i} = array({name})")
                returned.append(f"out_{i}")
        # updates: all new values computed above, then written; in-place ones last
        writes = []
        for i, (variable, value) in enumerate(self.updates):
            bound[f"target_{i}"] = variable
            if value.uid in inplace:
                continue
            name = slot[value.uid]
            fresh = owns_fresh_buffer(value) and value.uid not in output_ids
            if fresh and value.ndim:
                writes.append(f"target_{i}.value = {name}")
            else:
                writes.append(f"target_{i}.value = array({name})")
        for i, (_, value) in enumerate(self.updates):
            if value.uid in inplace:
                bound[f"ufunc_{i}"] = INPLACE_UPDATE_UFUNCS[value.op]
                delta = slot[value.inputs[1].uid]
                writes.append(f"ufunc_{i}(target_{i}.value, {delta}, out=target_{i}.value)")
        args = ", ".join(f"a{i}" for i in range(len(self.specs)))
        source = [f"def run({args}):"]
        source += [f"    {line}" for line in lines + copies + writes]
        source.append(f"    return [{', '.join(returned)}]")
        self.source = "\n".join(source)
        namespace = dict(bound)
        exec(compile(self.source, f"<minidl step {self.name}>", "exec"), namespace)  # noqa: S102
        self._run = namespace["run"]
        self.plan_size = len(order)

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
