"""The numpy backend's graph: nodes, leaves, static shapes and an iterative topological sort.

Every op builds a :class:`Node` that records its inputs, attributes, static shape (``None``
for sizes known only at run time) and dtype. Nothing is computed while tracing; ``compile``
turns the nodes an output needs into a flat plan of prepared callables.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

Shape = tuple  # ints, or None for a size known only at run time


def _load_array_module() -> Any:
    """NumPy, or CuPy when ``MINIDL_NUMPY_XP=cupy`` (optional, untested without a GPU)."""
    choice = os.environ.get("MINIDL_NUMPY_XP", "numpy").lower()
    if choice == "cupy":  # pragma: no cover - needs a GPU
        try:
            import cupy
        except ImportError:
            raise ImportError(
                "MINIDL_NUMPY_XP=cupy needs the cupy package (pip install cupy-cuda12x)."
            ) from None
        return cupy
    if choice != "numpy":
        raise ValueError(f"MINIDL_NUMPY_XP must be 'numpy' or 'cupy'. Received: {choice!r}")
    return np


xp = _load_array_module()


def to_numpy(array: Any) -> np.ndarray:
    """Return ``array`` as a NumPy array (a no-op for NumPy, a device copy for CuPy)."""
    if xp is np:
        return array
    return xp.asnumpy(array)  # pragma: no cover


# op name -> prepare(node) returning the run-time callable over the input arrays
FORWARD: dict[str, Callable[[Node], Callable[..., Any]]] = {}
# ops whose result may share memory with an input (reshape, transpose, broadcast views, ...)
VIEW_OPS: set[str] = set()
# ops with no gradient on purpose (comparisons, rounding, randomness, integer ops)
NON_DIFFERENTIABLE: set[str] = set()
# op name -> prepare(node, index, checked) returning a callable that writes its result into
# input ``index``; with ``checked`` it falls back to a new array when the shapes differ
INPLACE: dict[str, Callable[[Node, int, bool], Callable[..., Any]]] = {}


def register(op: str, *, view: bool = False, differentiable: bool = True) -> Callable:
    """Decorator recording ``prepare(node) -> callable`` as the forward of ``op``."""

    def decorate(prepare: Callable[[Node], Callable[..., Any]]) -> Callable:
        FORWARD[op] = prepare
        if view:
            VIEW_OPS.add(op)
        if not differentiable:
            NON_DIFFERENTIABLE.add(op)
        return prepare

    return decorate


_node_ids = itertools.count()


class Node:
    """A symbolic value: the result of ``op`` applied to ``inputs`` with ``attrs``."""

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "name", "uid")
    __array_ufunc__ = None  # make ``ndarray + node`` defer to ``Node.__radd__``

    def __init__(
        self,
        op: str,
        inputs: Sequence[Node],
        shape: Shape,
        dtype: Any,
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = attrs or {}
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.uid = next(_node_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<{self.op}{label} shape={self.shape} dtype={self.dtype.name}>"

    def __hash__(self) -> int:
        return self.uid

    def __eq__(self, other: object) -> bool:  # identity; K.equal builds comparisons
        return self is other

    def __bool__(self) -> bool:
        raise TypeError(
            "A symbolic minidl tensor has no truth value while a step is traced; use "
            f"K.where / K.greater instead. Received: {self!r}"
        )


class Leaf(Node):
    """A node whose value is known without computing anything (variable, constant, input)."""

    __slots__ = ("value",)


class Variable(Leaf):
    """State kept between calls; ``value`` is replaced (or updated in place) by a step."""

    __slots__ = ()

    def __init__(self, value: Any, name: str | None = None) -> None:
        super().__init__("variable", (), value.shape, value.dtype, name=name)
        self.value = value


class Constant(Leaf):
    """A fixed array baked into the graph."""

    __slots__ = ()

    def __init__(self, value: Any) -> None:
        super().__init__("constant", (), value.shape, value.dtype)
        self.value = value


class Placeholder(Leaf):
    """The ``index``-th argument of a compiled step."""

    __slots__ = ()

    def __init__(self, index: int, shape: Shape, dtype: Any, name: str | None = None) -> None:
        super().__init__("input", (), shape, dtype, attrs={"index": index}, name=name)
        self.value = None


def default_dtype(value: Any) -> np.dtype:
    """``floatx()`` for float (or Python scalar float) data; integer and bool dtypes kept."""
    dtype = np.asarray(value).dtype
    if dtype.kind in "fcO":
        return np.dtype("float32")
    return dtype


def as_array(value: Any, dtype: Any = None) -> Any:
    """Convert array-like ``value`` to an ``xp`` array of ``dtype`` (default: ``default_dtype``)."""
    if dtype is None:
        dtype = default_dtype(value)
    return xp.array(value, dtype=dtype)


def as_node(value: Any, dtype: Any = None) -> Node:
    """Return ``value`` if it is a node, else a constant holding it."""
    if isinstance(value, Node):
        return value
    return Constant(as_array(value, dtype))


def operand_pair(a: Any, b: Any) -> tuple[Node, Node]:
    """Turn two operands into nodes; a non-node takes the other operand's dtype.

    Python scalars and arrays mixed with a float tensor take that tensor's dtype; mixed with
    an integer tensor, a float scalar makes a ``float32`` constant (and a float result).
    """
    if isinstance(a, Node) and isinstance(b, Node):
        return a, b
    if not isinstance(a, Node) and not isinstance(b, Node):
        return as_node(a), as_node(b)
    node, other = (a, b) if isinstance(a, Node) else (b, a)
    other_kind = np.asarray(other).dtype.kind
    if node.dtype.kind == "f" or other_kind not in "fc":
        dtype = node.dtype
    else:
        dtype = np.dtype("float32")
    converted = as_node(other, dtype)
    return (node, converted) if node is a else (converted, node)


def broadcast_shapes(*shapes: Shape) -> Shape:
    """Static NumPy broadcasting where ``None`` is a size known only at run time.

    Raises:
        ValueError: when two known sizes cannot broadcast.
    """
    rank = max(len(s) for s in shapes)
    result = []
    for axis in range(rank):
        sizes = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = {d for d in sizes if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(
                f"Operands could not be broadcast together. Received: shapes {list(shapes)}"
            )
        if known:
            result.append(known.pop())
        elif any(d is None for d in sizes):
            result.append(None)
        else:
            result.append(1)
    return tuple(result)


def normalize_axes(axis: int | Iterable[int] | None, ndim: int) -> tuple[int, ...]:
    """Return ``axis`` as a sorted tuple of non-negative axes (all axes for ``None``)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    result = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"Axis {a} is out of range for a tensor of rank {ndim}.")
        result.append(a % ndim if ndim else 0)
    return tuple(sorted(set(result)))


def topological_order(roots: Iterable[Node]) -> list[Node]:
    """All nodes the ``roots`` depend on, inputs before users (iterative depth-first sort)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        if root.uid in seen:
            continue
        seen.add(root.uid)
        stack = [(root, iter(root.inputs))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child.uid not in seen:
                    seen.add(child.uid)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order
