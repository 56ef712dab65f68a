"""Lowering pass: each step runs as soon as the values it reads exist.

The spec's plan is a depth-first order from the outputs, then from each update in turn. In a
training step the first layer's update needs the whole backward pass, so the plan computes
every layer's output gradient before any kernel gradient: every activation and every output
gradient lives until the end of the backward pass (more memory), and each kernel gradient
reads them back from memory long after they left the cache (VGG16's kernel gradients ran
1.4x slower in that order than right after their output gradients).

``reorder`` runs the leaves (inputs, variables, constants: no work) first, then every other
step in the order its inputs became ready, first ready first run, ties in the spec's order.
A layer's input gradient, kernel gradient and bias gradient then follow its output gradient,
which dies with them. Only the order changes; each step computes what it did.
"""

from __future__ import annotations

from collections import deque

from .graph import Leaf
from .plan import Plan, Step


def reorder(plan: Plan) -> None:
    """Put ``plan``'s steps in the order their inputs became ready (see the module docstring)."""
    steps = plan.steps
    computed = {s.node.uid for s in steps}
    waiting: dict[int, int] = {}
    readers: dict[int, list[Step]] = {}
    for step in steps:
        parents = {p.uid for p in step.reads if p.uid in computed}
        waiting[step.node.uid] = len(parents)
        for uid in parents:
            readers.setdefault(uid, []).append(step)
    leaves = [s for s in steps if isinstance(s.node, Leaf)]
    ready = deque(s for s in steps if waiting[s.node.uid] == 0 and not isinstance(s.node, Leaf))
    order: list[Step] = []

    def run(step: Step) -> None:
        order.append(step)
        for reader in readers.get(step.node.uid, ()):
            waiting[reader.node.uid] -= 1
            if waiting[reader.node.uid] == 0:
                ready.append(reader)

    for leaf in leaves:
        run(leaf)
    while ready:
        run(ready.popleft())
    assert len(order) == len(steps), "a step's inputs never became ready"
    plan.steps = order
