"""Order the nodes between input and output tensors, and run them on backend tensors.

The order is Keras 2's: a node's depth is its longest distance to an output, nodes run from
the deepest (the inputs) to depth 0, and layers are listed by decreasing depth, ties broken
by the order a walk back from the outputs first meets them. Keeping Keras' order keeps
weight files written by Keras 2 loadable layer by layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minidl.engine.node import KerasTensor, Node, as_list


@dataclass
class GraphPlan:
    """Nodes in run order, and layers in Keras 2 order (both computed once per model)."""

    nodes: list[Node]
    layers: list[Any]
    node_depths: dict[int, int]


def _node_key(node: Node) -> int:
    return id(node)


def plan_graph(
    inputs: Sequence[KerasTensor], outputs: Sequence[KerasTensor], owner: str = "the model"
) -> GraphPlan:
    """Walk back from ``outputs`` to ``inputs``; raise a clear error if an input is missing.

    Args:
        inputs: the tensors whose values will be given; the walk stops at them.
        outputs: the tensors to compute.
        owner: how error messages name what is being built (e.g. ``model 'unet'``).
    """
    given = {id(t) for t in inputs}
    layer_order: dict[int, int] = {}
    layers_by_id: dict[int, Any] = {}
    post_order: list[Node] = []
    finished: set[int] = set()
    for output in outputs:
        if id(output) in given:
            continue
        stack: list[tuple[Node, int]] = [(output.node, 0)]
        in_progress: set[int] = set()
        while stack:
            node, position = stack.pop()
            key = _node_key(node)
            if position == 0:
                if key in finished:
                    continue
                if key in in_progress:
                    raise ValueError(f"The graph of {owner} has a cycle at {node.layer.name!r}.")
                in_progress.add(key)
                layers_by_id.setdefault(id(node.layer), node.layer)
                layer_order.setdefault(id(node.layer), len(layer_order))
                if not node.inputs:
                    _disconnected(node, owner, inputs)
            if position < len(node.inputs):
                stack.append((node, position + 1))
                tensor = node.inputs[position]
                if id(tensor) not in given and _node_key(tensor.node) not in finished:
                    stack.append((tensor.node, 0))
                continue
            in_progress.discard(key)
            finished.add(key)
            post_order.append(node)
    for tensor in inputs:  # given tensors' own nodes (the Input layers) belong to the graph
        node = tensor.node
        if not node.inputs and _node_key(node) not in finished:
            finished.add(_node_key(node))
            post_order.insert(0, node)
            layers_by_id.setdefault(id(node.layer), node.layer)
            layer_order.setdefault(id(node.layer), len(layer_order))
    depths: dict[int, int] = {}
    layer_depths: dict[int, int] = {}
    for node in reversed(post_order):
        depth = max(depths.setdefault(_node_key(node), 0), layer_depths.get(id(node.layer), 0))
        depths[_node_key(node)] = depth
        layer_depths[id(node.layer)] = depth
        for tensor in node.inputs:
            if id(tensor) in given and tensor.node.inputs:
                continue
            parent = _node_key(tensor.node)
            depths[parent] = max(depth + 1, depths.get(parent, 0))
    # a node's parents always sit deeper than it, so decreasing depth is a valid run order
    run_order = sorted(post_order, key=lambda n: -depths[_node_key(n)])
    layers = sorted(
        layers_by_id.values(), key=lambda la: (-layer_depths[id(la)], layer_order[id(la)])
    )
    return GraphPlan(run_order, layers, depths)


def _disconnected(node: Node, owner: str, inputs: Sequence[KerasTensor]) -> None:
    """A walk reached an Input that is not among ``inputs``: name it."""
    given = {id(t) for t in inputs}
    if any(id(t) in given for t in node.outputs):
        return
    missing = node.outputs[0] if node.outputs else None
    names = [t.node.layer.name for t in inputs]
    raise ValueError(
        f"Graph disconnected: cannot obtain the value of input {node.layer.name!r} "
        f"(tensor {missing!r}) needed by {owner}; its outputs depend on it but it is not "
        f"among the inputs. Pass it in `inputs`. Received: inputs={names}"
    )


def run_graph(
    plan: GraphPlan,
    inputs: Sequence[KerasTensor],
    outputs: Sequence[KerasTensor],
    values: Sequence[Any],
    training: bool = False,
) -> list[Any]:
    """Compute ``outputs`` from backend tensors ``values`` given for ``inputs`` (in order)."""
    computed: dict[int, Any] = {id(t): v for t, v in zip(inputs, values)}
    for node in plan.nodes:
        if all(id(t) in computed for t in node.outputs):
            continue
        args = [computed[id(t)] for t in node.inputs]
        layer_input = args if node.input_was_list else args[0]
        kwargs = {"training": training, **node.call_kwargs}
        result = node.layer.call(layer_input, **kwargs)
        node.layer.add_activity_penalty(result)
        results = as_list(result)
        for tensor, value in zip(node.outputs, results):
            computed[id(tensor)] = value
    return [computed[id(t)] for t in outputs]
