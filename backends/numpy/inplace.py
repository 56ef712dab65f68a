"""Lowering pass: results written into an input that nobody reads afterwards.

An element-wise op with an in-place form (``spec`` ``into``) writes into one of its inputs
when that input is a fresh array of the result's shape and dtype, read by this step only and
not kept to the end of the call (an output or update value). A value the other operands
could broadcast to a bigger shape is never written into; where two run-time sizes meet, the
kernel checks the shapes on every call (``checked``).

An SGD-style update ``v - delta`` (or ``v + delta``) whose ``delta`` is a fresh array is
applied in place on the variable's buffer, after everything else is computed.
"""

from __future__ import annotations

from .graph import Leaf, Node
from .plan import Plan, owns_fresh_buffer
from .spec import SPEC

INPLACE_UPDATE_OPS = ("add", "sub")


def safety(shape: tuple, others: tuple[Node, ...]) -> str | None:
    """Whether broadcasting ``others`` against ``shape`` keeps ``shape`` as the result.

    Returns ``"safe"``, ``"checked"`` (two run-time sizes meet: check the shapes per call) or
    None (the result may be larger, never write in place).
    """
    verdict = "safe"
    for other in others:
        if other.ndim > len(shape):
            return None
        for mine, theirs in zip(shape[len(shape) - other.ndim :], other.shape):
            if theirs == 1 or (theirs is not None and theirs == mine):
                continue
            if theirs is None and mine is None:
                verdict = "checked"
            elif theirs is not None:
                return None
    return verdict


def choose_updates(plan: Plan) -> None:
    """Mark the update values to apply in place on their variables; drop their steps."""
    readers = plan.readers()
    outputs = {o.uid for o in plan.outputs}
    for variable, value in plan.updates:
        if (
            value.op in INPLACE_UPDATE_OPS
            and value.inputs[0] is variable
            and value.shape == variable.shape
            and readers.get(value.uid, 0) == 0
            and value.uid not in outputs
            and owns_fresh_buffer(value.inputs[1])
            and value.inputs[1].dtype == variable.dtype
        ):
            plan.inplace_updates.add(value.uid)
    plan.steps = [s for s in plan.steps if s.node.uid not in plan.inplace_updates]


def choose_steps(plan: Plan) -> None:
    """Let each element-wise step write into an input whose value dies there."""
    readers, kept = plan.readers(), plan.kept()
    for step in plan.steps:
        node = step.node
        spec = SPEC.get(node.op)
        if step.epilogue is not None or isinstance(node, Leaf) or node.ndim == 0:
            continue
        if spec is None or spec.into is None:
            continue
        for index, parent in enumerate(step.reads):
            if (
                owns_fresh_buffer(parent)
                and readers.get(parent.uid, 0) == 1
                and parent.uid not in kept
                and parent.dtype == node.dtype
                and parent.shape == node.shape
            ):
                verdict = safety(parent.shape, step.reads[:index] + step.reads[index + 1 :])
                if verdict is not None:
                    step.into, step.checked = index, verdict == "checked"
                    break
