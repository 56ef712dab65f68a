"""Weight penalties added to the training loss: ``l1``, ``l2`` and ``l1_l2``.

A layer given ``kernel_regularizer=regularizers.l2(0.01)`` (or the name ``"l2"``) adds
``0.01 * sum(kernel ** 2)`` to the loss; the model collects the terms through
``layer.regularization_losses()``.

>>> from minidl import regularizers
>>> regularizers.serialize(regularizers.get("l2"))
{'class_name': 'L1L2', 'config': {'l1': 0.0, 'l2': 0.01}}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from minidl import backend as K


class L1L2:
    """Penalty ``l1 * sum(|w|) + l2 * sum(w ** 2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:  # noqa: E741
        for name, value in (("l1", l1), ("l2", l2)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(
                    f"Invalid value for argument `{name}` of regularizer L1L2: expected a "
                    f"finite number >= 0. Received: {name}={value!r}"
                )
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight: Any) -> Any:
        """The penalty for ``weight`` as a scalar tensor."""
        penalty = K.sum(K.abs(weight)) * self.l1 if self.l1 else None
        if self.l2:
            squares = K.sum(K.square(weight)) * self.l2
            penalty = squares if penalty is None else penalty + squares
        return K.sum(weight) * 0.0 if penalty is None else penalty

    def get_config(self) -> dict[str, float]:
        """Constructor arguments that rebuild this regularizer."""
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> L1L2:
        """Rebuild a regularizer from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1}, l2={self.l2})"


def l1(l1: float = 0.01) -> L1L2:  # noqa: E741
    """Penalty ``l1 * sum(|w|)``."""
    return L1L2(l1=l1)


def l2(l2: float = 0.01) -> L1L2:
    """Penalty ``l2 * sum(w ** 2)``."""
    return L1L2(l2=l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: E741
    """Penalty ``l1 * sum(|w|) + l2 * sum(w ** 2)``."""
    return L1L2(l1=l1, l2=l2)


REGULARIZERS: dict[str, Callable[[], L1L2]] = {"l1": l1, "l2": l2, "l1_l2": l1_l2}


def get(identifier: Any) -> Callable[[Any], Any] | None:
    """Return a regularizer for None, a name, a ``{"class_name", "config"}`` dict or a callable.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        if identifier.get("class_name") not in ("L1L2", "L1", "L2"):
            raise ValueError(
                f"Unknown regularizer class {identifier.get('class_name')!r}. Valid classes: "
                f"L1L2. Received: {identifier!r}"
            )
        return L1L2.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, str) and identifier.strip().lower() in REGULARIZERS:
        return REGULARIZERS[identifier.strip().lower()]()
    raise ValueError(
        f"Unknown regularizer {identifier!r}. Valid names: {', '.join(REGULARIZERS)}. "
        f"Received: regularizer={identifier!r}"
    )


def serialize(regularizer: Callable[[Any], Any] | None) -> dict[str, Any] | str | None:
    """Return what ``get`` turns back into ``regularizer`` (a custom one's ``__name__``)."""
    if regularizer is None:
        return None
    if isinstance(regularizer, L1L2):
        return {"class_name": "L1L2", "config": regularizer.get_config()}
    name = getattr(regularizer, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot serialize regularizer {regularizer!r}: it has no __name__.")
    return name
