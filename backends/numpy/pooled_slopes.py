"""Lowering pass: an activation's slope before a max-pool is taken at the pooled size.

The spec differentiates ``pool2d(f(z))`` as ``f_grad(pool2d_grad(g_p, y, pooled), y)``:
route the pooled gradient back to the full-size image, then multiply by ``f'`` there.
``pool2d_grad`` puts each pooled gradient where ``y`` equals the window's maximum, so for a
slope that depends only on the gradient and the value it is read at (``tanh``, ``sigmoid``
and ``relu`` read it from their output), ``f_grad(route(g_p), y) == route(f_grad(g_p,
pooled))``: the same products, on an array ``kh * kw`` times smaller. The rewrite applies
where the pool's gradient has no other reader.
"""

from __future__ import annotations

from .graph import Node
from .graph import rewrite as rewrite_nodes

SLOPES = ("tanh_grad", "sigmoid_grad", "relu_grad")


def _pooled_slope(node: Node, readers: dict[int, int]) -> Node | None:
    """``pool2d_grad(f_grad(g_p, pooled), y, pooled)`` for ``f_grad(pool2d_grad(...), y)``."""
    if node.op not in SLOPES:
        return None
    routed, y = node.inputs
    if (
        routed.op != "pool2d_grad"
        or routed.attrs["mode"] != "max"
        or routed.inputs[1] is not y
        or readers.get(routed.uid, 0) != 1
        or routed.dtype != node.dtype
    ):
        return None
    pooled_grad, _, pooled = routed.inputs
    slope = Node(node.op, (pooled_grad, pooled), pooled.shape, node.dtype, dict(node.attrs))
    return Node("pool2d_grad", (slope, y, pooled), y.shape, node.dtype, dict(routed.attrs))


def rewrite_graph(roots: list[Node]) -> list[Node]:
    """``roots`` with every slope before a max-pool's gradient taken at the pooled size."""
    return rewrite_nodes(roots, _pooled_slope)


def rewrite(outputs: list[Node], updates: list[tuple[Node, Node]]) -> tuple[list, list]:
    """The step's outputs and updates after the rewrite (unchanged nodes kept as they are)."""
    roots = rewrite_graph(outputs + [value for _, value in updates])
    new_updates = [
        (variable, value) for (variable, _), value in zip(updates, roots[len(outputs) :])
    ]
    return roots[: len(outputs)], new_updates
