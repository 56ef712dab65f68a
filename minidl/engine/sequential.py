"""``Sequential``: a ``Model`` whose graph is a stack, grown one layer at a time.

As in Keras 2, the stack gets an ``InputLayer`` (named ``<first layer>_input``) as soon as
its input shape is known, and every added layer is called on the previous output, so
``model.input``, ``layer.output`` and every ``Model`` method work on a stack too.
``model.layers`` lists the stacked layers without that input layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl.engine.data_adapters import is_array_like, is_sequence_like, unpack_batch
from minidl.engine.model import Model
from minidl.engine.node import KerasTensor
from minidl.layers import base as layer_base


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: layers to add in order (an ``Input(...)`` may come first).
        name: the model's name (default ``sequential``, ``sequential_1``, ...).
    """

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None) -> None:
        super().__init__(name=name or layer_base.unique_layer_name("sequential"))
        self._stack: list[Any] = []
        self._input_tensor: KerasTensor | None = None
        self._own_nodes: list[Any] = []
        for layer in layers or ():
            self.add(layer)

    @property
    def layers(self) -> list[Any]:
        """The stacked layers in order, without the input layer (a new list)."""
        return list(self._stack)

    # ------------------------------------------------------------------- structure
    def add(self, layer: Any) -> None:
        """Append ``layer``; it is built at once when the input shape is known.

        An ``Input(shape=...)`` (or an ``InputLayer``) may come first to fix the input shape.
        """
        from minidl.layers import InputLayer

        if isinstance(layer, KerasTensor) and not layer.node.inputs:
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input_tensor is not None:
                raise ValueError(
                    f"An Input can only be the first element of model {self.name!r}. "
                    f"Received: {layer!r} after {len(self._stack)} layers"
                )
            self._input_tensor = layer.output
            self._connect()
            return
        if not isinstance(layer, layer_base.Layer):
            raise TypeError(
                "The added layer must be an instance of minidl.layers.Layer (or a model). "
                f"Received: layer={layer!r} of type {type(layer).__name__}"
            )
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(
                f"All layers added to a Sequential model should have unique names. Name "
                f"{layer.name!r} is already the name of a layer in model {self.name!r}."
            )
        first_shape = getattr(layer, "batch_input_shape", None)
        if not self._stack and self._input_tensor is None and first_shape is not None:
            self._input_tensor = _make_input(layer, tuple(first_shape))
        self._stack.append(layer)
        if self._input_tensor is None:
            self._layers = list(self._stack)
            self.steps.clear()
            return
        try:
            self._connect(len(self._stack) - 1)
        except Exception:
            self._stack.pop()
            raise

    def pop(self) -> Any:
        """Remove and return the last layer."""
        if not self._stack:
            raise TypeError(f"There are no layers in model {self.name!r} to pop.")
        layer = self._stack.pop()
        self._connect()
        return layer

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch axis included)."""
        if input_shape is None:
            if self._input_tensor is None:
                raise ValueError(
                    f"Model {self.name!r} needs an input shape to be built: pass "
                    "`build((None, *sample_shape))` or give the first layer `input_shape=`."
                )
            return self._connect()
        shape = tuple(None if d is None else int(d) for d in input_shape)
        if self._input_tensor is not None and self._input_tensor.shape == shape and self.built:
            return None
        previous = self._input_tensor
        first = self._stack[0] if self._stack else None
        self._input_tensor = _make_input(first, shape) if first is not None else None
        if self._input_tensor is None:
            from minidl.layers import InputLayer

            self._input_tensor = InputLayer(batch_input_shape=shape).output
        try:
            self._connect()
        except Exception:
            self._input_tensor = previous
            self._connect()
            raise
        return None

    def _connect(self, start: int | None = None) -> None:
        """Call the stacked layers (from layer ``start`` on) on the input and adopt the graph.

        Without ``start`` the whole stack is called again (after removing this model's
        earlier calls), so layers keep one node each.
        """
        if self._input_tensor is None:
            self._layers = list(self._stack)
            self.built = False
            self.steps.clear()
            return
        if start is None:
            self._forget_own_nodes()
            start = 0
            tensor = self._input_tensor
        else:
            tensor = self.outputs[0] if self.outputs else self._input_tensor
        created: list[Any] = []
        try:
            for layer in self._stack[start:]:
                self._check_layer_backend(layer)
                tensor = layer(tensor)
                if not isinstance(tensor, KerasTensor):
                    created.append(tensor[0].node)
                    raise ValueError(
                        f"Layer {layer.name!r} returns several tensors; a Sequential model "
                        "needs layers with one output."
                    )
                created.append(tensor.node)
            if self._compile_options is not None:  # a new stack: read trainable weights again
                self._compiled_trainable = None
            self._init_graph(self._input_tensor, tensor)
        except Exception:
            _forget_nodes(created)
            raise
        self._own_nodes += created

    def _forget_own_nodes(self) -> None:
        _forget_nodes(self._own_nodes)
        self._own_nodes = []

    def _prepare_run(self, x: Any, compiled: bool = True) -> Any:
        """Build from the data if needed, then check the backend and compilation."""
        if compiled:
            self._require_compiled()
        if not self.built:
            x, sample = _peek_inputs(x)
            self.build((None, *np.shape(sample)[1:]))
        return super()._prepare_run(x, compiled)

    # ------------------------------------------------------ Keras 2 predictions
    def predict_proba(self, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Keras 2's ``Sequential.predict_proba``: ``predict`` (the outputs as probabilities)."""
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def predict_classes(self, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Keras 2's ``Sequential.predict_classes``: the argmax of each output, or, for a single
        sigmoid unit, 1 where the output exceeds 0.5 (int32)."""
        proba = np.asarray(self.predict(x, batch_size=batch_size, verbose=verbose))
        if proba.shape[-1] > 1:
            return proba.argmax(axis=-1)
        return (proba > 0.5).astype("int32")

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """Name, layer configs and input shape (JSON-serialisable)."""
        from minidl.engine.serialization import serialize_layer

        config: dict[str, Any] = {
            "name": self.name,
            "layers": [serialize_layer(layer) for layer in self._stack],
        }
        if self._input_tensor is not None:
            config["build_input_shape"] = list(self._input_tensor.shape)
        if not self.trainable:
            config["trainable"] = False
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any] | list, custom_objects: dict[str, Any] | None = None
    ) -> Any:
        """Rebuild a model (fresh weights) from ``get_config()``'s output."""
        from minidl.engine.serialization import deserialize_layer

        if isinstance(config, list):  # Keras 2.0-2.1 stored only the list of layers
            config = {"layers": config}
        if not isinstance(config, dict) or not isinstance(config.get("layers", []), list):
            raise ValueError(
                f"A Sequential config must be a dict with a list of `layers`. Received: {config!r}"
            )
        model = cls(name=config.get("name"))
        for spec in config.get("layers", []):
            model.add(deserialize_layer(spec, custom_objects))
        if not model.built and config.get("build_input_shape"):
            model.build(tuple(config["build_input_shape"]))
        model.trainable = bool(config.get("trainable", True))
        return model


def _make_input(layer: Any, batch_shape: tuple) -> KerasTensor:
    from minidl.layers import InputLayer

    dtype = getattr(layer, "dtype", None) or "float32"
    if hasattr(layer, "_plan"):
        dtype = layer.inputs[0].dtype if layer.inputs else "float32"
    name = layer_base.unique_layer_name(f"{layer.name}_input")
    return InputLayer(batch_input_shape=batch_shape, dtype=dtype, name=name).output


def _forget_nodes(nodes: list[Any]) -> None:
    """Remove ``nodes`` from their layers and from the layers that fed them."""
    for node in nodes:
        if node in node.layer.inbound_nodes:
            node.layer.inbound_nodes.remove(node)
        for parent in {id(p): p for p in node.parents}.values():
            if node in parent.layer.outbound_nodes:
                parent.layer.outbound_nodes.remove(node)


def _peek_inputs(x: Any) -> tuple[Any, Any]:
    """Return ``(x, first_input_batch)`` without losing a generator's first batch."""
    if x is None:
        raise ValueError("No input data: pass `x`. Received: x=None")
    if is_array_like(x):
        return x, np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
    if is_sequence_like(x):
        return x, np.asarray(unpack_batch(x[0], "A Sequence")[0])
    iterator = iter(x)
    first = next(iterator)
    return itertools.chain([first], iterator), np.asarray(unpack_batch(first, "A generator")[0])
