"""The link from a softmax or sigmoid output to its logits: one attribute on every backend.

``softmax`` and ``sigmoid`` set ``output._keras_logits`` (the attribute Keras 3 uses) to a
``LogitsLink``; the cross-entropies read it with ``logits_of`` and then work on the logits,
which stays exact where ``log(softmax(z))`` would round to ``-inf``. The numpy, theano and
tensorflow backends all use these two functions on their own tensor types.

>>> class Tensor:
...     pass
>>> probabilities, logits = Tensor(), Tensor()
>>> _ = link_logits(probabilities, logits, "softmax", axis=1)
>>> logits_of(probabilities, "softmax", axis=1, rank=2) is logits
True
>>> logits_of(probabilities, "softmax", axis=0, rank=2) is None  # another axis
True
>>> logits_of(probabilities, "sigmoid") is None
True
"""

from __future__ import annotations

from typing import Any, NamedTuple

ATTRIBUTE = "_keras_logits"


class LogitsLink(NamedTuple):
    """Which ``activation`` (``"softmax"`` or ``"sigmoid"``) made an output, from what."""

    logits: Any
    activation: str
    axis: int | None = None  # softmax only


def link_logits(output: Any, logits: Any, activation: str, axis: int | None = None) -> Any:
    """Record on ``output`` that it is ``activation(logits)`` (along ``axis``); return it."""
    setattr(output, ATTRIBUTE, LogitsLink(logits, activation, axis))
    return output


def logits_of(
    output: Any, activation: str, axis: int | None = None, rank: int | None = None
) -> Any | None:
    """The logits ``output`` was made from by ``activation`` (along ``axis``), else None."""
    link = getattr(output, ATTRIBUTE, None)
    if not isinstance(link, LogitsLink) or link.activation != activation:
        return None
    if axis is not None and link.axis is not None:
        if (link.axis % rank if rank else link.axis) != (axis % rank if rank else axis):
            return None
    return link.logits
