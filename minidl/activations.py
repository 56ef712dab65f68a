"""Activation functions by name: ``activations.get("relu")(x)`` applies ``K.relu`` to a tensor.

>>> from minidl import activations
>>> activations.get("relu").__name__, activations.get(None).__name__
('relu', 'linear')
>>> activations.serialize(activations.get("softmax"))
'softmax'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minidl import backend as K


def linear(x: Any) -> Any:
    """Return ``x`` unchanged (the identity activation)."""
    return x


def relu(x: Any) -> Any:
    """Rectified linear unit ``max(x, 0)``."""
    return K.relu(x)


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))``."""
    return K.sigmoid(x)


def hard_sigmoid(x: Any) -> Any:
    """Piece-wise linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)``."""
    return K.hard_sigmoid(x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return K.tanh(x)


def softmax(x: Any) -> Any:
    """Softmax over the last axis."""
    return K.softmax(x, axis=-1)


def elu(x: Any) -> Any:
    """Exponential linear unit with ``alpha=1``."""
    return K.elu(x, 1.0)


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``."""
    return K.softplus(x)


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``."""
    return K.softsign(x)


def exponential(x: Any) -> Any:
    """Element-wise ``exp(x)``."""
    return K.exp(x)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Any) -> Any:
    """Scaled ELU (Klambauer et al., 2017): ``scale * elu(x, alpha)`` with Keras' constants."""
    return SELU_SCALE * K.elu(x, SELU_ALPHA)


ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    fn.__name__: fn
    for fn in (
        linear,
        relu,
        sigmoid,
        hard_sigmoid,
        tanh,
        softmax,
        elu,
        softplus,
        softsign,
        exponential,
        selu,
    )
}


def get(identifier: str | Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """Return the activation function named ``identifier`` (None means ``linear``).

    A callable is returned unchanged.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        if key not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation function {identifier!r}. Valid names: "
                f"{', '.join(sorted(ACTIVATIONS))}. Received: activation={identifier!r}"
            )
        return ACTIVATIONS[key]
    if callable(identifier):
        return identifier
    raise TypeError(
        "An activation must be a name, a callable or None. "
        f"Received: activation={identifier!r} of type {type(identifier).__name__}"
    )


def serialize(activation: Callable[[Any], Any]) -> str:
    """Return the name that ``get`` maps back to ``activation`` (a custom one's ``__name__``)."""
    name = getattr(activation, "__name__", None)
    if name is None:
        raise ValueError(
            f"Cannot serialize an activation without a __name__. Received: {activation!r}"
        )
    return name
