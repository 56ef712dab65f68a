"""The numpy backend's graph: nodes (with their operators), leaves, static shapes, sorting.

Every op builds a :class:`Node` that records its inputs, attributes, static shape (``None``
for sizes known only at run time) and dtype. Nothing is computed while tracing; ``compile``
lowers the nodes an output needs into a flat plan of prepared callables. The few builders
that the operators ``+ - * / ** -x abs(x)`` and the derivative rules share live here too.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import OPERATOR_NAMES, mixed_dtypes_error
from ..shapes import broadcast_shapes  # noqa: F401 (re-exported to this package)
from . import spec

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


def register(op: str, *, view: bool = False, differentiable: bool = True) -> Callable:
    """Decorator recording ``prepare(node) -> kernel`` as the forward of ``op`` (``spec``)."""
    return spec.forward(op, view=view, differentiable=differentiable)


_node_ids = itertools.count()


class Node:
    """A symbolic value: the result of ``op`` applied to ``inputs`` with ``attrs``."""

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "name", "uid", "_keras_logits")
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
        # a softmax or sigmoid output's link to its logits (``backends.logits``)
        self._keras_logits: Any = None

    def with_inputs(self, inputs: Sequence[Node]) -> Node:
        """A copy of this node reading ``inputs`` instead (for graph rewrites)."""
        return Node(self.op, inputs, self.shape, self.dtype, self.attrs, self.name)

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

    # the contract's dtype rule first (tensor operands share one dtype), then the op
    def __add__(self, other: Any) -> Node:
        return arithmetic("+", self, other)

    def __radd__(self, other: Any) -> Node:
        return arithmetic("+", other, self)

    def __sub__(self, other: Any) -> Node:
        return arithmetic("-", self, other)

    def __rsub__(self, other: Any) -> Node:
        return arithmetic("-", other, self)

    def __mul__(self, other: Any) -> Node:
        return arithmetic("*", self, other)

    def __rmul__(self, other: Any) -> Node:
        return arithmetic("*", other, self)

    def __truediv__(self, other: Any) -> Node:
        return arithmetic("/", self, other)

    def __rtruediv__(self, other: Any) -> Node:
        return arithmetic("/", other, self)

    def __pow__(self, other: Any) -> Node:
        require_same_dtype("power", self, other)
        return power(self, other)

    def __rpow__(self, other: Any) -> Node:
        return binary("power", other, self)

    def __neg__(self) -> Node:
        return unary("neg", self)

    def __abs__(self) -> Node:
        return unary("abs", self)


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


# ----------------------------------------------------------------- node builders

_OPERATOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


def float_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` itself when it is a float dtype, else ``float32``."""
    return dtype if dtype.kind == "f" else np.dtype("float32")


def require_same_dtype(op_name: str, *operands: Any) -> None:
    """Raise ``mixed_dtypes_error`` unless all tensor operands share one dtype.

    Non-tensor operands (Python and NumPy scalars, arrays) are exempt: they take the
    tensor's dtype. Checked once per traced op, never per call of a compiled step.
    """
    nodes = [x for x in operands if isinstance(x, Node)]
    for node in nodes[1:]:
        if node.dtype != nodes[0].dtype:
            raise mixed_dtypes_error(op_name, nodes[0].dtype.name, node.dtype.name)


def cast(x: Any, dtype: Any) -> Node:
    """Return ``x`` converted to ``dtype``; float->int truncates toward zero."""
    x = as_node(x)
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return Node("cast", (x,), x.shape, dtype)


def unary(op: str, x: Any, dtype: Any = None, **attrs: Any) -> Node:
    """A node applying element-wise ``op`` to ``x``."""
    x = as_node(x)
    return Node(op, (x,), x.shape, dtype or x.dtype, attrs)


def binary(op: str, a: Any, b: Any, dtype: Any = None) -> Node:
    """A node applying element-wise ``op`` to ``a`` and ``b`` with broadcasting."""
    a, b = operand_pair(a, b)
    if dtype is None:
        dtype = np.result_type(a.dtype, b.dtype)
        if op == "div" and dtype.kind != "f":
            dtype = np.dtype("float32")
    if dtype.kind == "f" and op != "power":
        a, b = cast(a, dtype), cast(b, dtype)
    return Node(op, (a, b), broadcast_shapes(a.shape, b.shape), dtype)


def arithmetic(symbol: str, a: Any, b: Any) -> Node:
    """``a <symbol> b`` for ``+ - * /``: operands of one dtype, then ``binary``."""
    require_same_dtype(OPERATOR_NAMES[symbol], a, b)
    return binary(_OPERATOR_OPS[symbol], a, b)


def power(x: Any, exponent: Any) -> Node:
    """Element-wise ``x ** exponent``; a Python scalar exponent gives ``pow_scalar``."""
    x = as_node(x)
    if isinstance(exponent, Node):
        return binary("power", x, exponent)
    if exponent == 2:
        return unary("square", x)
    if x.dtype.kind != "f" and float(exponent) != int(exponent):
        x = cast(x, "float32")
    return unary("pow_scalar", x, exponent=float(exponent))


def fully_known(shape: Shape) -> bool:
    """Whether every size of ``shape`` is known while tracing."""
    return all(d is not None for d in shape)


def shaped_like(op: str, g: Node, x: Node, **attrs: Any) -> Node:
    """A node ``op(g)`` whose result has ``x``'s shape (read at run time when not static)."""
    inputs = (g,) if fully_known(x.shape) else (g, x)
    return Node(op, inputs, x.shape, g.dtype, {"shape": x.shape, **attrs})


def sum_to(g: Node, x: Node) -> Node:
    """Sum ``g`` over the axes that broadcasting added to ``x`` (``g`` when there are none)."""
    lead = g.ndim - x.ndim
    kept = [lead + i for i, d in enumerate(x.shape) if d == 1 and g.shape[lead + i] != 1]
    if lead == 0 and not kept:
        return g
    attrs = {"lead": tuple(range(lead)), "kept": tuple(kept)}
    return Node("sum_to", (g,), x.shape, g.dtype, attrs)


def rewrite(roots: Sequence[Node], replace: Callable[[Node, dict[int, int]], Node | None]) -> list:
    """The ``roots`` rebuilt with ``replace(node, readers)`` applied to every node.

    Nodes are visited inputs first; a node whose inputs were replaced is copied
    (``with_inputs``) before ``replace`` sees it. ``readers`` counts, per node uid, the nodes
    and roots that read it. ``replace`` returns a new node, or None to keep the node.
    """
    order = topological_order(roots)
    readers: dict[int, int] = {}
    for node in order:
        for parent in node.inputs:
            readers[parent.uid] = readers.get(parent.uid, 0) + 1
    for root in roots:
        readers[root.uid] = readers.get(root.uid, 0) + 1
    new: dict[int, Node] = {}
    for node in order:
        inputs = tuple(new.get(p.uid, p) for p in node.inputs)
        current = node
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            current = node.with_inputs(inputs)
            readers[current.uid] = readers.get(node.uid, 0)
        replacement = replace(current, readers)
        if replacement is not None:
            readers[replacement.uid] = readers.get(node.uid, 0)
            current = replacement
        if current is not node:
            new[node.uid] = current
    return [new.get(r.uid, r) for r in roots]
