"""Small seeded models with named layers, shared by the saving and functional-API tests."""

from __future__ import annotations

import minidl
from minidl.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minidl.models import Sequential


def small_cnn(
    seed: int,
    input_shape: tuple[int, int, int] = (6, 6, 2),
    units: int = 2,
    softmax: bool = False,
    name: str | None = None,
) -> Sequential:
    """``conv`` (3 filters 3x3, relu), ``pool`` (2x2), ``flat``, ``logits`` (``units``) and,
    with ``softmax``, ``probs``; the weights are drawn from ``seed``."""
    minidl.set_random_seed(seed)
    layers = [
        Conv2D(3, 3, input_shape=input_shape, activation="relu", name="conv"),
        MaxPooling2D(2, name="pool"),
        Flatten(name="flat"),
        Dense(units, name="logits"),
    ]
    if softmax:
        layers.append(Activation("softmax", name="probs"))
    return Sequential(layers, name=name)
