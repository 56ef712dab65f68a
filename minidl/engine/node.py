"""Symbolic tensors and the nodes that connect layers into a graph (Keras 2's functional API).

``Input(shape=...)`` returns a ``KerasTensor``: a shape (batch axis ``None``), a dtype and
the history ``(layer, node_index, tensor_index)`` saying which call of which layer made it.
Calling a layer on such tensors records a ``Node`` on the layer (its inputs and outputs) and
returns new symbolic tensors; no backend op runs, so graphs are built the same way whatever
the backend. Models later run the nodes on real backend tensors while tracing a step.

>>> from minidl.layers import Dense, Input
>>> x = Input(shape=(3,), name="features")
>>> y = Dense(2, name="out")(x)
>>> y.shape, y.node.layer.name, x.node.layer.name
((None, 2), 'out', 'features')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ShapeTuple = tuple[int | None, ...]


class KerasTensor:
    """A symbolic tensor: the output ``tensor_index`` of call ``node_index`` of ``layer``."""

    def __init__(self, shape: Sequence[int | None], dtype: str, node: Node, index: int) -> None:
        self.shape: ShapeTuple = tuple(None if d is None else int(d) for d in shape)
        self.dtype = str(dtype)
        self.node = node
        self.index = index

    @property
    def _keras_history(self) -> tuple[Any, int, int]:
        """``(layer, node_index, tensor_index)`` as Keras 2 names a tensor's origin."""
        layer = self.node.layer
        node_index = next(
            (i for i, node in enumerate(layer.inbound_nodes) if node is self.node), -1
        )
        return layer, node_index, self.index

    @property
    def name(self) -> str:
        layer, node_index, index = self._keras_history
        return f"{layer.name}/{node_index}:{index}" if node_index or index else layer.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def _keras_shape(self) -> ShapeTuple:  # the Keras 2 attribute name
        return self.shape

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape} dtype={self.dtype} name={self.name!r}>"

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Symbolic tensor {self.name!r} has no value: it only describes a graph. Build a "
            "Model(inputs, outputs) and call predict, or use K.function([inputs], [outputs]). "
            f"Received: {self!r}"
        )


class Node:
    """One call of ``layer``: the symbolic tensors it read and the ones it returned.

    ``call_kwargs`` keeps keyword arguments given at the call (e.g. ``training=True``).
    """

    def __init__(
        self,
        layer: Any,
        inputs: list[KerasTensor],
        outputs: list[KerasTensor],
        input_was_list: bool,
        call_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.layer = layer
        self.inputs = inputs
        self.outputs = outputs
        self.input_was_list = input_was_list
        self.call_kwargs = dict(call_kwargs or {})

    @property
    def parents(self) -> list[Node]:
        """The nodes that produced this node's inputs."""
        return [tensor.node for tensor in self.inputs]

    @property
    def input_shapes(self) -> Any:
        shapes = [t.shape for t in self.inputs]
        return shapes if self.input_was_list else shapes[0]

    @property
    def output_shapes(self) -> Any:
        shapes = [t.shape for t in self.outputs]
        return shapes if len(shapes) > 1 else shapes[0]

    def __repr__(self) -> str:
        return f"<Node of {self.layer.name!r} inputs={[t.name for t in self.inputs]}>"


def is_symbolic(value: Any) -> bool:
    """True for a ``KerasTensor`` or a non-empty list/tuple made only of them."""
    if isinstance(value, KerasTensor):
        return True
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, KerasTensor) for v in value)
    )


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (a list or tuple is copied; anything else is wrapped)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def make_node(
    layer: Any,
    inputs: Any,
    output_shapes: Any,
    dtype: str,
    call_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Record a call of ``layer`` on ``inputs``; return its symbolic output(s).

    ``output_shapes`` is one shape, or a list of shapes for a layer with several outputs.
    """
    several = isinstance(output_shapes, list) and (
        not output_shapes or isinstance(output_shapes[0], (list, tuple))
    )
    shapes = output_shapes if several else [output_shapes]
    input_list = as_list(inputs)
    node = Node(layer, input_list, [], isinstance(inputs, (list, tuple)), call_kwargs)
    node.outputs = [KerasTensor(shape, dtype, node, i) for i, shape in enumerate(shapes)]
    layer.inbound_nodes.append(node)
    for parent in {id(t.node): t.node for t in input_list}.values():
        parent.layer.outbound_nodes.append(node)
    return node.outputs if several else node.outputs[0]
