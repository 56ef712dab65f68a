"""Reverse-mode autodiff for the numpy backend: the sweep over the graph.

``gradients(loss, wrt)`` walks the traced graph backwards once. Each op's derivative rule
(its ``spec`` entry, next to its forward in ``math``, ``nn`` or ``conv``) receives the node
and the gradient of the loss with respect to the node's output, and returns one gradient node
per input (``None`` where there is none). Gradients reaching a node from several users are
added up, so ``x * x`` and ``x + x`` accumulate. Rules build ordinary graph nodes, so the
backward pass is lowered into the same static plan as the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .graph import Constant, Node, as_node, float_dtype, fully_known, topological_order, xp
from .spec import SPEC, Rule, derivative, forward, is_differentiable


def rule(*ops: str) -> Callable[[Rule], Rule]:
    """Decorator recording the derivative rule of ``ops`` (``spec.derivative``)."""
    return derivative(*ops)


def _check_scalar(loss: Node) -> None:
    if any(d != 1 for d in loss.shape):
        raise ValueError(
            f"`gradients` needs a scalar loss (use K.mean or K.sum first). "
            f"Received: a loss of shape {loss.shape}"
        )


def _zeros_like(x: Node) -> Node:
    dtype = float_dtype(x.dtype)
    if fully_known(x.shape):
        return Constant(xp.zeros(x.shape, dtype=dtype))
    return Node("zeros_like", (x,), x.shape, dtype)


@forward("zeros_like", differentiable=False)
def _prepare_zeros_like(node: Node) -> Any:
    dtype = node.dtype
    return lambda x: xp.zeros(x.shape, dtype=dtype)


def _accumulate(parts: list[Node]) -> Node:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def gradients(loss: Any, variables: Sequence[Any]) -> list[Node]:
    """Return d(loss)/d(v) for each ``v`` (a variable or a traced input)."""
    loss = as_node(loss)
    _check_scalar(loss)
    wrt = [as_node(v) for v in variables]
    wanted = {v.uid for v in wrt}
    order = topological_order([loss])
    # only nodes that depend on a wanted node through differentiable ops need a gradient
    needs: set[int] = set()
    for node in order:
        if node.uid in wanted:
            needs.add(node.uid)
        elif is_differentiable(node.op) and any(i.uid in needs for i in node.inputs):
            needs.add(node.uid)
    pending: dict[int, list[Node]] = {loss.uid: [Constant(xp.ones(loss.shape, loss.dtype))]}
    found: dict[int, Node] = {}
    for node in reversed(order):
        parts = pending.pop(node.uid, None)
        if parts is None or node.uid not in needs:
            continue
        total = _accumulate(parts)
        found[node.uid] = total
        if not node.inputs:
            continue
        spec = SPEC.get(node.op)
        if spec is None or spec.derivative is None:
            raise NotImplementedError(
                f"The numpy backend has no gradient rule for op {node.op!r} (needed to "
                f"differentiate through {node!r})."
            )
        for parent, grad in zip(node.inputs, spec.derivative(node, total)):
            if grad is not None and parent.uid in needs:
                pending.setdefault(parent.uid, []).append(grad)
    return [found[v.uid] if v.uid in found else _zeros_like(v) for v in wrt]
