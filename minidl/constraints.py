"""Weight constraints applied after every optimizer step (Keras 2's ``keras.constraints``).

A layer given ``kernel_constraint=constraints.max_norm(2.0)`` has its kernel projected by the
constraint each time the optimizer updates it. ``axis`` follows Keras: for a ``Dense`` kernel
``(input_dim, units)`` and a ``Conv2D`` kernel ``(kh, kw, in, filters)`` the default ``axis=0``
(Dense) or ``axis=[0, 1, 2]`` (Conv2D) constrains each output unit's incoming weights.

>>> from minidl import constraints
>>> constraints.serialize(constraints.get("max_norm"))
{'class_name': 'MaxNorm', 'config': {'max_value': 2.0, 'axis': 0}}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from minidl import backend as K

Axis = int | list[int] | tuple[int, ...]


def _axis(axis: Axis) -> int | tuple[int, ...]:
    return tuple(int(a) for a in axis) if isinstance(axis, list | tuple) else int(axis)


def _number(owner: str, name: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(
            f"Invalid value for argument `{name}` of constraint {owner}: expected a finite "
            f"number >= {low}. Received: {name}={value!r}"
        )
    if value < low:
        raise ValueError(
            f"Invalid value for argument `{name}` of constraint {owner}: expected a number "
            f">= {low}. Received: {name}={value!r}"
        )
    return float(value)


class Constraint:
    """Base class: ``constraint(w)`` returns the projected weight tensor."""

    def __call__(self, w: Any) -> Any:
        return w

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this constraint."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Rebuild a constraint from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _norms(w: Any, axis: int | tuple[int, ...]) -> Any:
    return K.sqrt(K.sum(K.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Rescale each weight vector along ``axis`` whose L2 norm exceeds ``max_value``."""

    def __init__(self, max_value: float = 2.0, axis: Axis = 0) -> None:
        self.max_value = _number("MaxNorm", "max_value", max_value)
        self.axis = axis

    def __call__(self, w: Any) -> Any:
        norms = _norms(w, _axis(self.axis))
        desired = K.clip(norms, 0.0, self.max_value)
        return w * (desired / (norms + K.epsilon()))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Set negative weights to zero."""

    def __call__(self, w: Any) -> Any:
        return K.maximum(w, 0.0)


class UnitNorm(Constraint):
    """Divide each weight vector along ``axis`` by its L2 norm."""

    def __init__(self, axis: Axis = 0) -> None:
        self.axis = axis

    def __call__(self, w: Any) -> Any:
        return w / (_norms(w, _axis(self.axis)) + K.epsilon())

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each weight vector's norm toward ``[min_value, max_value]`` by the fraction ``rate``.

    ``norm' = rate * clip(norm, min_value, max_value) + (1 - rate) * norm``.
    """

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = 0
    ) -> None:
        self.min_value = _number("MinMaxNorm", "min_value", min_value)
        self.max_value = _number("MinMaxNorm", "max_value", max_value, low=self.min_value)
        self.rate = _number("MinMaxNorm", "rate", rate)
        self.axis = axis

    def __call__(self, w: Any) -> Any:
        norms = _norms(w, _axis(self.axis))
        desired = self.rate * K.clip(norms, self.min_value, self.max_value)
        desired = desired + (1.0 - self.rate) * norms
        return w * (desired / (norms + K.epsilon()))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


# Keras 2's lower-case names.
max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm
maxnorm, nonneg, unitnorm = MaxNorm, NonNeg, UnitNorm

CONSTRAINTS: dict[str, type[Constraint]] = {
    cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
}
ALIASES = {
    "max_norm": "MaxNorm",
    "maxnorm": "MaxNorm",
    "non_neg": "NonNeg",
    "nonneg": "NonNeg",
    "unit_norm": "UnitNorm",
    "unitnorm": "UnitNorm",
    "min_max_norm": "MinMaxNorm",
}


def get(identifier: Any) -> Callable[[Any], Any] | None:
    """A constraint from None, a name, a ``{"class_name", "config"}`` dict or a callable."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        name, config = identifier, {}
    elif isinstance(identifier, dict) and "class_name" in identifier:
        name, config = identifier["class_name"], dict(identifier.get("config") or {})
    elif callable(identifier):
        return identifier
    else:
        raise ValueError(
            "A constraint must be None, a name, a dict with 'class_name' or a callable. "
            f"Received: {identifier!r}"
        )
    cls = CONSTRAINTS.get(ALIASES.get(name, name))
    if cls is None:
        valid = sorted([*CONSTRAINTS, *ALIASES])
        raise ValueError(
            f"Unknown constraint {name!r}. Valid names: {', '.join(valid)}. "
            f"Received: constraint={identifier!r}"
        )
    return cls.from_config(config)


def serialize(constraint: Callable[[Any], Any] | None) -> dict[str, Any] | None:
    """``{"class_name", "config"}`` for a constraint (None stays None)."""
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise ValueError(
            "Only minidl.constraints.Constraint instances can be serialized. "
            f"Received: {constraint!r}"
        )
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}
