"""The numpy backend's op table: one entry per op, its forward and its derivative rule together.

An entry says what an op computes and nothing about how a compiled step makes it fast:

* ``forward``: ``prepare(node) -> kernel``, the callable a compiled step runs on the input
  arrays. Ops listed with ``options`` also accept the lowering's keyword arguments
  (``out``: where to write the result; ``workers``: how many threads to use); without them
  the kernel allocates its result and runs on the caller's thread.
* ``derivative``: ``rule(node, g) -> one gradient node per input`` (``None`` for none).
* ``into``: ``prepare(node, index, checked) -> kernel`` writing the result into input
  ``index`` (``checked``: fall back to a new array when the shapes differ at run time). It
  gives the same numbers as ``forward``; the in-place and fusion passes decide when to use it.
* ``view``: the result may share memory with input 0; ``differentiable``: False for ops
  without a gradient on purpose (comparisons, rounding, randomness).

The entries themselves live in the topic modules (``math``, ``nn``, ``conv``, ``random``),
each op's forward directly above its rule; the lowering passes are separate modules
(``ordering``, ``pooled_slopes``, ``inplace``, ``fusion``, ``buffers``, ``threads``; see
``lowering``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Prepare = Callable[..., Callable[..., Any]]
Rule = Callable[[Any, Any], Sequence[Any]]

OUT = "out"  # the forward takes ``out=allocate``: ``allocate(shape, dtype)`` gives the result
WORKERS = "workers"  # the forward takes ``workers=n``: split its blocks over ``n`` threads
SPLITS = "splits"  # ... element-wise work, without BLAS threads to hold (``parallel``)


@dataclass
class OpSpec:
    """What one op computes: forward, derivative rule and in-place form (see module doc)."""

    name: str
    forward: Prepare | None = None
    derivative: Rule | None = None
    into: Callable[..., Callable[..., Any]] | None = None
    view: bool = False
    differentiable: bool = True
    options: frozenset[str] = field(default_factory=frozenset)


SPEC: dict[str, OpSpec] = {}


def entry(op: str) -> OpSpec:
    """The table entry of ``op`` (created empty on first use)."""
    if op not in SPEC:
        SPEC[op] = OpSpec(op)
    return SPEC[op]


def forward(
    op: str, *, view: bool = False, differentiable: bool = True, options: Sequence[str] = ()
) -> Callable[[Prepare], Prepare]:
    """Decorator recording ``prepare(node) -> kernel`` as the forward of ``op``."""

    def decorate(prepare: Prepare) -> Prepare:
        spec = entry(op)
        spec.forward, spec.view, spec.differentiable = prepare, view, differentiable
        spec.options = frozenset(options)
        return prepare

    return decorate


def derivative(*ops: str) -> Callable[[Rule], Rule]:
    """Decorator recording the derivative rule shared by ``ops``."""

    def decorate(rule: Rule) -> Rule:
        for op in ops:
            entry(op).derivative = rule
        return rule

    return decorate


def into(op: str) -> Callable[[Callable], Callable]:
    """Decorator recording ``prepare(node, index, checked)``, ``op`` written into an input."""

    def decorate(prepare: Callable) -> Callable:
        entry(op).into = prepare
        return prepare

    return decorate


def is_view(op: str) -> bool:
    """Whether ``op``'s result may share memory with its first input."""
    spec = SPEC.get(op)
    return spec is not None and spec.view


def is_differentiable(op: str) -> bool:
    """False for ops that have no gradient on purpose."""
    spec = SPEC.get(op)
    return spec is None or spec.differentiable


def prepare_forward(node: Any, **options: Any) -> Callable[..., Any]:
    """The kernel of ``node``; ``options`` the op does not take are left out.

    Raises:
        NotImplementedError: when the op has no forward.
    """
    spec = SPEC.get(node.op)
    if spec is None or spec.forward is None:
        raise NotImplementedError(f"The numpy backend has no forward for op {node.op!r}.")
    return spec.forward(node, **{k: v for k, v in options.items() if k in spec.options})
