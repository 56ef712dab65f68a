"""Lowering a traced step: the plan, and the passes that make it fast, each one switchable.

A compiled step first becomes a *plan*: one ``Step`` per node the outputs and updates need,
in topological order, each running its op's ``spec`` forward on fresh arrays. That plan
gives the spec's numbers. The passes then change how (never what) it computes:

=================  ==========================================================================
``ordering``       each step runs as soon as its inputs exist: a layer's kernel gradient right
                   after its output gradient, not after the whole backward pass (``ordering``)
``pooled_slopes``  ``tanh/sigmoid/relu`` slopes feeding a max-pool's gradient are taken at
                   the pooled size, then routed (``pooled_slopes``)
``inplace``        element-wise ops write into an input that nobody reads later; SGD-style
                   updates ``v - delta`` write into the variable's buffer (``inplace``)
``fusion``         bias and activation run inside the convolution's block loop (``fusion``)
``buffers``        results that never leave the step reuse arrays from call to call, shared
                   between values whose lifetimes do not overlap (``buffers``)
``threads``        convolution and pooling split their blocks over threads (``threads``)
=================  ==========================================================================

``MINIDL_NUMPY_PASSES`` picks them when a step is compiled: unset or ``all`` (every pass),
``none``, a list (``fusion,inplace``) or exclusions (``-buffers,-threads``). ``passes(...)``
does the same for a block of code.

>>> sorted(enabled_passes("-threads,-fusion"))
['buffers', 'inplace', 'ordering', 'pooled_slopes']
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from . import buffers, fusion, inplace, ordering, pooled_slopes, threads
from .graph import Node
from .plan import Plan, drop_unread_leaves, schedule

PASSES: tuple[str, ...] = ("ordering", "pooled_slopes", "inplace", "fusion", "buffers", "threads")
ENVIRONMENT_VARIABLE = "MINIDL_NUMPY_PASSES"

_chosen: list[frozenset[str]] = []  # innermost ``passes(...)`` block last


def enabled_passes(setting: str | None = None) -> frozenset[str]:
    """The passes a ``MINIDL_NUMPY_PASSES`` value turns on (see the module docstring).

    Raises:
        ValueError: for a name that is not a pass.
    """
    text = (setting if setting is not None else os.environ.get(ENVIRONMENT_VARIABLE, "")).strip()
    if text.lower() in ("", "all"):
        return frozenset(PASSES)
    if text.lower() == "none":
        return frozenset()
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name.lstrip("-") not in PASSES]
    if unknown:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE} takes 'all', 'none' or pass names from {list(PASSES)} "
            f"(a leading '-' leaves one out). Received: {text!r}"
        )
    if all(name.startswith("-") for name in names):
        return frozenset(PASSES) - {name[1:] for name in names}
    return frozenset(name for name in names if not name.startswith("-"))


def current_passes() -> frozenset[str]:
    """The passes a step compiled now gets: the innermost ``passes`` block, else the variable."""
    return _chosen[-1] if _chosen else enabled_passes()


@contextmanager
def passes(setting: str | Iterable[str]) -> Iterator[frozenset[str]]:
    """Compile the steps of a block with the given passes (a setting string or names)."""
    chosen = enabled_passes(setting if isinstance(setting, str) else ",".join(setting) or "none")
    _chosen.append(chosen)
    try:
        yield chosen
    finally:
        _chosen.pop()


def lower(outputs: list[Node], updates: list[tuple[Node, Node]], enabled: frozenset[str]) -> Plan:
    """Schedule the step and run the ``enabled`` passes over it, in a fixed order."""
    if "pooled_slopes" in enabled:
        outputs, updates = pooled_slopes.rewrite(outputs, updates)
    plan = schedule(outputs, updates)
    plan.passes = enabled
    if "ordering" in enabled:
        ordering.reorder(plan)
    if "inplace" in enabled:
        inplace.choose_updates(plan)
    drop_unread_leaves(plan)
    if "fusion" in enabled:
        fusion.fuse(plan)
    if "inplace" in enabled:
        inplace.choose_steps(plan)
    if "buffers" in enabled:
        buffers.assign(plan)
    if "threads" in enabled:
        threads.assign(plan)
    return plan
