"""Layers that merge a list of tensors: Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate, and their functional forms (``add([a, b])``, ...), as in Keras 2.

A merge layer takes a list of inputs: ``build(input_shapes)``, ``call(inputs)`` and
``compute_output_shape(input_shapes)`` all receive lists. Element-wise merges broadcast their
inputs like NumPy after the batch axis (an input of lower rank gains axes after the batch
axis, as in Keras 2); ``Concatenate`` needs equal sizes on every axis but ``axis``.

>>> from minidl import layers
>>> layers.Add().compute_output_shape([(None, 4, 3), (None, 1, 3)])
(None, 4, 3)
>>> layers.Concatenate().compute_output_shape([(None, 8, 8, 16), (None, 8, 8, 32)])
(None, 8, 8, 48)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minidl import backend as K
from minidl.backends.shapes import broadcast_shapes
from minidl.layers.base import Layer

ShapeTuple = tuple[int | None, ...]


class _Merge(Layer):
    """Base of the element-wise merge layers: checks the list of shapes and broadcasts."""

    min_inputs = 2
    max_inputs: int | None = None

    def _shapes(self, input_shape: Any) -> list[ShapeTuple]:
        """``input_shape`` as a list of shape tuples, after checking count and batch sizes."""
        kind = type(self).__name__
        if not isinstance(input_shape, list | tuple) or not all(
            isinstance(s, list | tuple) for s in input_shape
        ):
            raise ValueError(
                f"A merge layer ('{self.name}', {kind}) must be called on a list of inputs. "
                f"Received: input_shape={input_shape!r}"
            )
        shapes = [tuple(s) for s in input_shape]
        count = len(shapes)
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            wanted = (
                f"exactly {self.max_inputs}"
                if self.max_inputs == self.min_inputs
                else f"at least {self.min_inputs}"
            )
            raise ValueError(
                f"Layer '{self.name}' ({kind}) expects {wanted} inputs. "
                f"Received: {count} inputs with shapes {shapes}"
            )
        if any(len(s) < 1 for s in shapes):
            raise ValueError(
                f"Layer '{self.name}' ({kind}) needs inputs with a batch axis. "
                f"Received: input shapes {shapes}"
            )
        batch_sizes = {s[0] for s in shapes} - {None}
        if len(batch_sizes) > 1:
            raise ValueError(
                f"Layer '{self.name}' ({kind}) cannot merge tensors with different batch "
                f"sizes. Received: input shapes {shapes}"
            )
        return shapes

    def compute_output_shape(self, input_shape: Any) -> ShapeTuple:
        shapes = self._shapes(input_shape)
        batch = next((s[0] for s in shapes if s[0] is not None), None)
        try:
            dims = broadcast_shapes(*(s[1:] for s in shapes))
        except ValueError:
            raise ValueError(
                f"Inputs of layer '{self.name}' ({type(self).__name__}) have incompatible "
                f"shapes: they must be equal or 1 on every axis after the batch axis. "
                f"Received: input shapes {shapes}"
            ) from None
        return (batch, *dims)

    def build(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)  # validates the list of shapes
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not isinstance(inputs, list | tuple):
            raise ValueError(
                f"A merge layer ('{self.name}', {type(self).__name__}) must be called on a "
                f"list of inputs. Received: {inputs!r}"
            )
        ranks = [K.ndim(x) for x in inputs]
        aligned = []
        for x, rank in zip(inputs, ranks):
            for _ in range(max(ranks) - rank):  # lower rank: new axes right after the batch
                x = K.expand_dims(x, 1)
            aligned.append(x)
        return self._merge(aligned)

    def _merge(self, inputs: list[Any]) -> Any:
        raise NotImplementedError  # pragma: no cover - every subclass defines it


class Add(_Merge):
    """Element-wise sum of a list of inputs (same shape, or broadcastable)."""

    def _merge(self, inputs: list[Any]) -> Any:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Subtract(_Merge):
    """Element-wise difference ``inputs[0] - inputs[1]`` of exactly two inputs."""

    max_inputs = 2

    def _merge(self, inputs: list[Any]) -> Any:
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """Element-wise product of a list of inputs."""

    def _merge(self, inputs: list[Any]) -> Any:
        product = inputs[0]
        for x in inputs[1:]:
            product = product * x
        return product


class Average(_Merge):
    """Element-wise mean of a list of inputs."""

    def _merge(self, inputs: list[Any]) -> Any:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total / float(len(inputs))


class Maximum(_Merge):
    """Element-wise maximum of a list of inputs."""

    def _merge(self, inputs: list[Any]) -> Any:
        result = inputs[0]
        for x in inputs[1:]:
            result = K.maximum(result, x)
        return result


class Minimum(_Merge):
    """Element-wise minimum of a list of inputs."""

    def _merge(self, inputs: list[Any]) -> Any:
        result = inputs[0]
        for x in inputs[1:]:
            result = K.minimum(result, x)
        return result


class Concatenate(_Merge):
    """Join a list of inputs along ``axis``; every other axis must match.

    Args:
        axis: the axis to join along (``-1``, the channels of an image, by default). The
            batch axis (0) cannot be joined.
    """

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise self.invalid_argument("axis", "an integer", axis)
        self.axis = axis

    def compute_output_shape(self, input_shape: Any) -> ShapeTuple:
        shapes = self._shapes(input_shape)
        rank = len(shapes[0])
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 < axis < rank:
            raise ValueError(
                f"Layer '{self.name}' (Concatenate) cannot join axis {self.axis} of inputs of "
                f"rank {rank} (the batch axis 0 cannot be joined). Received: input shapes "
                f"{shapes}"
            )
        mismatch = any(len(s) != rank for s in shapes) or any(
            len({s[i] for s in shapes} - {None}) > 1 for i in range(1, rank) if i != axis
        )
        if mismatch:
            raise ValueError(
                f"A `Concatenate` layer ('{self.name}') requires inputs with matching shapes "
                f"except for the concatenation axis {self.axis}. Received: input shapes {shapes}"
            )
        batch = next((s[0] for s in shapes if s[0] is not None), None)
        out: list[int | None] = [batch]
        for i in range(1, rank):
            sizes = [s[i] for s in shapes]
            if i == axis:
                out.append(None if None in sizes else sum(sizes))  # type: ignore[arg-type]
            else:
                out.append(next((d for d in sizes if d is not None), None))
        return tuple(out)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not isinstance(inputs, list | tuple):
            raise ValueError(
                f"A merge layer ('{self.name}', Concatenate) must be called on a list of "
                f"inputs. Received: {inputs!r}"
            )
        return K.concatenate(list(inputs), axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


# ------------------------------------------------------------------- functional forms


def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """Functional form of ``Add``: ``add([a, b])`` is ``Add(**kwargs)([a, b])``."""
    return Add(**kwargs)(list(inputs))


def subtract(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """Functional form of ``Subtract`` (exactly two inputs)."""
    return Subtract(**kwargs)(list(inputs))


def multiply(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """Functional form of ``Multiply``."""
    return Multiply(**kwargs)(list(inputs))


def average(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """Functional form of ``Average``."""
    return Average(**kwargs)(list(inputs))


def maximum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """Functional form of ``Maximum``."""
    return Maximum(**kwargs)(list(inputs))


def minimum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """Functional form of ``Minimum``."""
    return Minimum(**kwargs)(list(inputs))


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """Functional form of ``Concatenate``: ``concatenate([a, b], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(list(inputs))
