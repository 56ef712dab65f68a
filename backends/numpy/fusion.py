"""Lowering pass: the element-wise ops that follow a convolution run inside its block loop.

A Conv2D layer computes ``conv2d -> add(bias) -> activation``. Op by op, each element-wise
op is one more pass over the whole activation (90 MB for ConvLarge's first layer at batch
60), while the convolution had every block of output rows in cache right after its matrix
product. ``fuse`` finds chains ``conv2d -> op -> op ...`` in which

* each op has an in-place form (``spec`` ``into``: the ufuncs, ``relu``, ``tanh``),
* it reads the previous value once, as its only operand of the full shape; the others are
  small values broadcast along the channel axis (a bias, a scalar) of the same dtype,
* and nobody else reads the convolution or an intermediate (it is not an output either).

The chain's last step then computes its value with one call: the convolution applies the ops
to each block in place, in the chain's order, so the numbers are the ones op by op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .graph import Node
from .plan import Plan
from .spec import SPEC, prepare_forward


@dataclass
class Epilogue:
    """A convolution and the element-wise ``chain`` run on its blocks."""

    conv: Node
    chain: list[Node]

    @property
    def inputs(self) -> tuple[Node, ...]:
        """The fused call's arguments: the convolution's, then each op's small operands."""
        extra = [p for node, prev in self._links() for p in node.inputs if p is not prev]
        return (*self.conv.inputs, *extra)

    @property
    def label(self) -> str:
        """``"conv2d + add + relu"``."""
        return " + ".join(n.op for n in (self.conv, *self.chain))

    def _links(self) -> list[tuple[Node, Node]]:
        previous = [self.conv, *self.chain[:-1]]
        return list(zip(self.chain, previous))

    def prepare(self, **options: Any) -> Callable[..., Any]:
        """``f(x, kernel, *small_operands)`` returning the chain's last value."""
        steps = []
        for node, prev in self._links():
            index = node.inputs.index(prev)
            count = len(node.inputs) - 1
            steps.append((SPEC[node.op].into(node, index, False), index, count))
        n_conv = len(self.conv.inputs)

        def epilogue(block: Any, extras: tuple) -> None:
            at = 0
            for inplace, index, count in steps:
                operands = list(extras[at : at + count])
                operands.insert(index, block)
                inplace(*operands)
                at += count

        convolve = prepare_forward(self.conv, **options)

        def conv2d_with_epilogue(*args: Any) -> Any:
            extras = args[n_conv:]
            return convolve(*args[:n_conv], epilogue=lambda block: epilogue(block, extras))

        return conv2d_with_epilogue


def _small_operand(other: Node, node: Node) -> bool:
    """Whether ``other`` broadcasts along the channel axis of any block of ``node``."""
    if other.dtype != node.dtype or other.ndim > node.ndim:
        return False
    leading, last = other.shape[:-1], other.shape[-1:] or (1,)
    return all(d == 1 for d in leading) and last[0] in (1, node.shape[-1])


def _extends(prev: Node, node: Node) -> bool:
    spec = SPEC.get(node.op)
    if spec is None or spec.into is None:
        return False
    if node.shape != prev.shape or node.dtype != prev.dtype:
        return False
    if sum(p is prev for p in node.inputs) != 1:
        return False
    return all(_small_operand(p, node) for p in node.inputs if p is not prev)


def find_epilogues(plan: Plan) -> dict[int, Epilogue]:
    """Chains to fuse, keyed by the uid of their last node (see the module docstring)."""
    kept, readers = plan.kept(), plan.readers()
    following: dict[int, list[Node]] = {}
    for step in plan.steps:
        for parent in step.reads:
            following.setdefault(parent.uid, []).append(step.node)
    found: dict[int, Epilogue] = {}
    for step in plan.steps:
        conv = step.node
        if conv.op != "conv2d" or conv.ndim != 4 or step.reads != conv.inputs:
            continue
        chain: list[Node] = []
        prev = conv
        while prev.uid not in kept and readers.get(prev.uid, 0) == 1:
            after = following.get(prev.uid, [])
            if len(after) != 1 or not _extends(prev, after[0]):
                break
            prev = after[0]
            chain.append(prev)
        if chain:
            found[chain[-1].uid] = Epilogue(conv, chain)
    return found


def fuse(plan: Plan) -> None:
    """Replace each chain by one step on its last node (the others leave the plan)."""
    epilogues = find_epilogues(plan)
    fused_away = {n.uid for e in epilogues.values() for n in (e.conv, *e.chain[:-1])}
    steps = []
    for step in plan.steps:
        if step.node.uid in fused_away:
            continue
        epilogue = epilogues.get(step.node.uid)
        if epilogue is not None:
            step.epilogue, step.reads = epilogue, epilogue.inputs
        steps.append(step)
    plan.steps = steps
