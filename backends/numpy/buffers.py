"""Lowering pass: result arrays reused from call to call, planned from the values' lifetimes.

Fresh memory costs a page fault per 4 KiB page on first touch, which on the sizes of a
convolution step costs as much as the arithmetic. A kernel that takes ``out`` (``spec``
``OUT``: convolutions, pooling, ``tanh_grad``) can instead write into a ``Buffer`` the plan
keeps. Whether that is safe is read off the plan alone, never off reference counts:

* a value *escapes* when it, or anything sharing its memory (a view of it, a step written in
  place into it), is kept to the end of the call (an output or an update value) or is a
  leaf. Escaping values always get fresh arrays, since the caller may hold them.
* the others live from their step to the last step that reads them or a value sharing their
  memory. Values of one static shape and dtype whose lifetimes do not overlap share a
  buffer (greedy, in plan order); a buffer's array is allocated on first use and again only
  when a run-time size changes.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .graph import Leaf, xp
from .plan import Plan
from .spec import OUT, SPEC, is_view


class Buffer:
    """An array a compiled step writes a result into on every call (one per thread)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._local = threading.local()

    def __call__(self, shape: tuple, dtype: Any) -> Any:
        """The buffer's array with ``shape`` and ``dtype`` (its old contents are garbage)."""
        array = getattr(self._local, "array", None)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = xp.empty(shape, dtype=np.dtype(dtype))
            self._local.array = array
        return array

    def __repr__(self) -> str:
        return f"Buffer({self.name!r})"


def storage_roots(plan: Plan) -> dict[int, int]:
    """For each step's value (by uid), the uid of the step whose array holds it."""
    root: dict[int, int] = {}
    for step in plan.steps:
        node = step.node
        if step.into >= 0:
            root[node.uid] = root.get(step.reads[step.into].uid, step.reads[step.into].uid)
        elif step.epilogue is None and is_view(node.op) and step.reads:
            root[node.uid] = root.get(step.reads[0].uid, step.reads[0].uid)
        else:
            root[node.uid] = node.uid
    return root


def _writes_out(step: Any) -> bool:
    op = step.epilogue.conv.op if step.epilogue is not None else step.node.op
    spec = SPEC.get(op)
    return spec is not None and OUT in spec.options and step.into < 0


def assign(plan: Plan) -> None:
    """Give each step whose value stays inside the call a buffer (see the module doc)."""
    root = storage_roots(plan)
    kept = plan.kept()
    escaping: set[int] = set()
    last_read: dict[int, int] = {}
    for position, step in enumerate(plan.steps):
        if step.node.uid in kept or isinstance(step.node, Leaf):
            escaping.add(root[step.node.uid])
        for parent in step.reads:
            owner = root.get(parent.uid, parent.uid)
            last_read[owner] = position
    free: dict[tuple, list[tuple[int, Buffer]]] = {}  # (shape, dtype) -> (free after, buffer)
    count = 0
    for position, step in enumerate(plan.steps):
        node = step.node
        if root[node.uid] != node.uid or node.uid in escaping or not _writes_out(step):
            continue
        end = last_read.get(node.uid, position)
        key = (node.shape, node.dtype)
        pool = free.setdefault(key, [])
        reusable = [entry for entry in pool if entry[0] < position]
        if reusable:
            entry = reusable[0]
            pool.remove(entry)
            buffer = entry[1]
        else:
            buffer = Buffer(f"b{count}")
            count += 1
        pool.append((end, buffer))
        step.buffer = buffer
