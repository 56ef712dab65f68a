"""A lowered step: the plan of steps that the lowering passes rewrite and ``compile`` runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .graph import Leaf, Node, topological_order
from .spec import is_view


def owns_fresh_buffer(node: Node) -> bool:
    """True when ``node``'s value is an array that no variable, constant or input shares."""
    return not isinstance(node, Leaf) and not is_view(node.op)


@dataclass
class Step:
    """One line of a plan: ``node``'s value computed from the values of ``reads``.

    The passes fill in how: ``into`` (write into ``reads[into]``; ``checked``: only when the
    run-time shapes agree), ``epilogue`` (a convolution with element-wise ops fused in),
    ``buffer`` (the array to write into) and ``workers`` (threads).
    """

    node: Node
    reads: tuple[Node, ...]
    into: int = -1
    checked: bool = False
    epilogue: Any = None
    buffer: Any = None
    workers: int = 1


@dataclass
class Plan:
    """The steps computing ``outputs`` and the new values of ``updates``, in order."""

    outputs: list[Node]
    updates: list[tuple[Node, Node]]
    steps: list[Step]
    passes: frozenset[str] = frozenset()
    # update values computed in place on their variable's buffer (by uid); not steps
    inplace_updates: set[int] = field(default_factory=set)

    def kept(self) -> set[int]:
        """Values that live to the end of a call: outputs, update values, in-place deltas."""
        kept = {o.uid for o in self.outputs} | {v.uid for _, v in self.updates}
        kept |= {v.inputs[1].uid for _, v in self.updates if v.uid in self.inplace_updates}
        return kept

    def readers(self) -> dict[int, int]:
        """How many times the steps read each value (by uid)."""
        count: dict[int, int] = {}
        for step in self.steps:
            for parent in step.reads:
                count[parent.uid] = count.get(parent.uid, 0) + 1
        return count


def schedule(outputs: list[Node], updates: list[tuple[Node, Node]]) -> Plan:
    """The spec's plan: every needed node, inputs first, on fresh arrays, one thread."""
    order = topological_order(outputs + [value for _, value in updates])
    return Plan(outputs, updates, [Step(node, node.inputs) for node in order])


def drop_unread_leaves(plan: Plan) -> None:
    """Remove leaves nothing reads any more (a variable only an in-place update used)."""
    readers, kept = plan.readers(), plan.kept()
    plan.steps = [
        s
        for s in plan.steps
        if not isinstance(s.node, Leaf) or s.node.uid in kept or readers.get(s.node.uid)
    ]
