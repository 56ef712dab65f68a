"""``model.summary()``: Keras 2's table of layers, output shapes and parameter counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

HEADERS = ("Layer (type)", "Output Shape", "Param #")


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


def print_summary(
    model: Any,
    shape_of: Callable[[Any], Sequence[int]],
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
    print_fn: Callable[[str], Any] | None = None,
) -> None:
    """Print ``model``'s summary table line by line through ``print_fn`` (default ``print``)."""
    print_fn = print_fn or print
    line_length = line_length or 65
    fractions = positions or (0.45, 0.85, 1.0)
    columns = [int(line_length * p) if p <= 1 else int(p) for p in fractions]
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(format_row(HEADERS, columns))
    print_fn("=" * line_length)
    layers = model.layers
    for index, layer in enumerate(layers):
        name = f"{layer.name} ({type(layer).__name__})"
        params = count_weights(layer.weights, shape_of)
        print_fn(format_row((name, layer.output_shape, params), columns))
        print_fn(("=" if index == len(layers) - 1 else "_") * line_length)
    if not layers:
        print_fn("=" * line_length)
    trainable = count_weights(model.trainable_weights, shape_of)
    non_trainable = count_weights(model.non_trainable_weights, shape_of)
    print_fn(f"Total params: {trainable + non_trainable:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {non_trainable:,}")
    print_fn("_" * line_length)
