"""``model.summary()``: Keras 2's table of layers, output shapes and parameter counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

HEADERS = ("Layer (type)", "Output Shape", "Param #")
GRAPH_HEADERS = (*HEADERS, "Connected to")


def format_row(fields: Sequence[Any], positions: Sequence[int]) -> str:
    """Left-align each field so that it ends before its column's position (cut if too long)."""
    line = ""
    for field, position in zip(fields, positions):
        if line:
            line = line[:-1] + " "
        line = (line + str(field))[:position]
        line += " " * (position - len(line))
    return line


def count_weights(weights: Sequence[Any], shape_of: Callable[[Any], Sequence[int]]) -> int:
    """Number of scalars in ``weights``, counting each variable once."""
    unique = {id(w): w for w in weights}
    return int(sum(int(np.prod(shape_of(w))) for w in unique.values()))


def is_sequential_like(model: Any) -> bool:
    """True for a stack: one node per depth, each with one input, and no shared layer."""
    plan = getattr(model, "_plan", None)
    if plan is None or type(model).__name__ == "Sequential":
        return True
    depths: dict[int, int] = {}
    for node in plan.nodes:
        if len(node.inputs) > 1:
            return False
        depth = plan.node_depths[id(node)]
        depths[depth] = depths.get(depth, 0) + 1
        if depths[depth] > 1:
            return False
    return len({id(node.layer) for node in plan.nodes}) == len(plan.nodes)


def _connections(model: Any, layer: Any) -> list[str]:
    """``"name[node][tensor]"`` for each input of each call of ``layer`` inside ``model``."""
    from minidl.engine.serialization import _node_indices

    indices = _node_indices(model)
    in_graph = {id(node) for node in model._plan.nodes}
    result = []
    for node in layer.inbound_nodes:
        if id(node) not in in_graph:
            continue
        for tensor in node.inputs:
            source = tensor.node.layer
            result.append(f"{source.name}[{indices[id(tensor.node)]}][{tensor.index}]")
    return result


def _shape_text(layer: Any) -> Any:
    try:
        return layer.output_shape
    except AttributeError:  # a shared layer called on inputs of several shapes
        return "multiple"


def print_summary(
    model: Any,
    shape_of: Callable[[Any], Sequence[int]],
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
    print_fn: Callable[[str], Any] | None = None,
) -> None:
    """Print ``model``'s summary table line by line through ``print_fn`` (default ``print``).

    A graph model gets Keras 2's "Connected to" column: ``layer[node][tensor]`` per input.
    """
    print_fn = print_fn or print
    stack = is_sequential_like(model)
    line_length = line_length or (65 if stack else 98)
    fractions = positions or ((0.45, 0.85, 1.0) if stack else (0.33, 0.55, 0.67, 1.0))
    columns = [int(line_length * p) if p <= 1 else int(p) for p in fractions]
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(format_row(HEADERS if stack else GRAPH_HEADERS, columns))
    print_fn("=" * line_length)
    layers = model.layers
    for index, layer in enumerate(layers):
        name = f"{layer.name} ({type(layer).__name__})"
        params = count_weights(layer.weights, shape_of)
        if stack:
            print_fn(format_row((name, _shape_text(layer), params), columns))
        else:
            connections = _connections(model, layer) or [""]
            print_fn(format_row((name, _shape_text(layer), params, connections[0]), columns))
            for extra in connections[1:]:
                print_fn(format_row(("", "", "", extra), columns))
        print_fn(("=" if index == len(layers) - 1 else "_") * line_length)
    if not layers:
        print_fn("=" * line_length)
    trainable = count_weights(model.trainable_weights, shape_of)
    non_trainable = count_weights(model.non_trainable_weights, shape_of)
    print_fn(f"Total params: {trainable + non_trainable:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {non_trainable:,}")
    print_fn("_" * line_length)
