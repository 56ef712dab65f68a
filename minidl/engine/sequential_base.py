"""A stack of layers: adding, building, weights and configuration (no training).

``Sequential`` adds compile/fit/evaluate/predict on top. A stack also behaves as a layer
(``build_for``, ``__call__``, ``weights``, ``pop_updates``), so a model can be added to
another one, e.g. a pretrained base under a new classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.engine.steps import StepCache
from minidl.layers import base as layer_base

ShapeTuple = tuple[int | None, ...]


class SequentialBase:
    """Layers in order, built as soon as the input shape is known, bound to one backend."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.trainable = True
        self.built = False
        self.stop_training = False
        self.steps = StepCache()
        self._layers: list[Any] = []
        self._input_batch_shape: ShapeTuple | None = None
        self._backend_name: str | None = None

    # ------------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Any]:
        """The layers in order (a new list; changing it does not change the model)."""
        return list(self._layers)

    @property
    def input_shape(self) -> ShapeTuple | None:
        """Input shape with the batch axis (``None`` until known)."""
        return self._input_batch_shape

    @property
    def batch_input_shape(self) -> ShapeTuple | None:
        """The input shape, so that a built model can start another one."""
        return self._input_batch_shape

    @property
    def output_shape(self) -> ShapeTuple | None:
        """Output shape with the batch axis (``None`` until built)."""
        if not self.built:
            return None
        return self._layers[-1].output_shape if self._layers else self._input_batch_shape

    def add(self, layer: Any) -> None:
        """Append ``layer``; it is built at once when the input shape is known.

        An ``Input(shape=...)`` may come first to fix the input shape.
        """
        from minidl.layers import InputLayer

        if isinstance(layer, InputLayer):
            if self._layers or self._input_batch_shape is not None:
                raise ValueError(
                    f"An Input can only be the first element of model {self.name!r}. "
                    f"Received: {layer!r} after {len(self._layers)} layers"
                )
            self._input_batch_shape = tuple(layer.batch_input_shape)
            self.built = True
            self._bind_backend()
            return
        if not isinstance(layer, (layer_base.Layer, SequentialBase)):
            raise TypeError(
                "The added layer must be an instance of minidl.layers.Layer (or a model). "
                f"Received: layer={layer!r} of type {type(layer).__name__}"
            )
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(
                f"All layers added to a Sequential model should have unique names. Name "
                f"{layer.name!r} is already the name of a layer in model {self.name!r}."
            )
        first_shape = getattr(layer, "batch_input_shape", None)
        if not self._layers and self._input_batch_shape is None and first_shape is not None:
            self._input_batch_shape = tuple(first_shape)
        self._layers.append(layer)
        self._on_structure_changed()
        if self._input_batch_shape is not None:
            try:
                self._build_layers(len(self._layers) - 1)
            except Exception:
                self._layers.pop()
                self._on_structure_changed()
                raise

    def pop(self) -> Any:
        """Remove and return the last layer."""
        if not self._layers:
            raise TypeError(f"There are no layers in model {self.name!r} to pop.")
        layer = self._layers.pop()
        self._on_structure_changed()
        if self.built:
            self._on_built()
        return layer

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """Return a layer by name or by index."""
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(
                    f"Model {self.name!r} has {len(self._layers)} layers. Received: index={index}"
                )
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in self._layers]
        raise ValueError(f"No layer named {name!r} in model {self.name!r}. Layers: {names}")

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch axis included)."""
        if input_shape is None:
            input_shape = self._input_batch_shape
        if input_shape is None:
            raise ValueError(
                f"Model {self.name!r} needs an input shape to be built: pass "
                "`build((None, *sample_shape))` or give the first layer `input_shape=`."
            )
        self._input_batch_shape = tuple(None if d is None else int(d) for d in input_shape)
        self._build_layers(0)

    def _build_layers(self, start: int) -> None:
        self._bind_backend()
        shape = self._input_batch_shape
        if start > 0:
            shape = self._layers[start - 1].output_shape
        assert shape is not None
        for layer in self._layers[start:]:
            self._check_layer_backend(layer)
            if layer.built and layer.input_shape is not None:
                expected = tuple(layer.input_shape)
                if len(expected) != len(shape) or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(expected[1:], shape[1:])
                ):
                    raise ValueError(
                        f"Layer {layer.name!r} was built for inputs of shape {expected} and "
                        f"cannot take the output of the previous layer. Received: shape {shape}"
                    )
            shape = layer.build_for(shape)
        self.built = True
        self._on_built()

    def _on_built(self) -> None:
        """Hook for subclasses, called after the layers are built."""

    def _on_structure_changed(self) -> None:
        """Forget compiled steps after a layer was added or removed."""
        self.steps.clear()

    # ------------------------------------------------------------------- backends
    def _bind_backend(self) -> None:
        if self._backend_name is None:
            self._backend_name = K.name()
        else:
            self.require_backend()

    def _check_layer_backend(self, layer: Any) -> None:
        if layer.built and layer.weights and not K.is_variable(layer.weights[0]):
            raise ValueError(
                f"Layer {layer.name!r} was built on another backend and cannot join model "
                f"{self.name!r} on the {K.name()!r} backend. Create a new layer and copy "
                "its weights with get_weights/set_weights."
            )

    def require_backend(self) -> None:
        """Raise ValueError when the current backend is not the one this model was built on."""
        if self._backend_name is not None and self._backend_name != K.name():
            raise ValueError(
                f"Model {self.name!r} was built with the {self._backend_name!r} backend and "
                f"cannot run on the {K.name()!r} backend. Switch back with "
                f"K.set_backend({self._backend_name!r}), or rebuild the model on "
                f"{K.name()!r} and copy the weights (get_weights/set_weights or "
                f"save_weights/load_weights). Received: current backend {K.name()!r}"
            )

    def backend_module(self) -> ModuleType:
        """The backend module holding this model's variables (the current one if unbuilt)."""
        return K.load(self._backend_name) if self._backend_name else K.current()

    # -------------------------------------------------------------------- weights
    @property
    def weights(self) -> list[Any]:
        """All weights, layer by layer (each layer's trainable ones first)."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[Any]:
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Any]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def weight_name(self, variable: Any) -> str:
        """Keras name of one of the model's weights, e.g. ``"dense/kernel:0"``."""
        for layer in self._layers:
            if any(w is variable for w in layer.weights):
                return layer.weight_name(variable)
        raise ValueError(f"{variable!r} is not a weight of model {self.name!r}.")

    def count_params(self) -> int:
        """Number of scalars in all weights."""
        shape_of = self.backend_module().int_shape
        return int(sum(int(np.prod(shape_of(w))) for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        """All weights as NumPy arrays, in ``weights`` order (works after a backend switch)."""
        get_value = self.backend_module().get_value
        return [get_value(w) for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Assign NumPy arrays to all weights; every shape is checked before any is written."""
        layer_base.assign_weights(
            "model", self.name, self.weights, weights, self.weight_name, self.backend_module()
        )

    # -------------------------------------------------------------- as a layer
    def build_for(self, input_shape: Sequence[int | None]) -> ShapeTuple:
        """Build for ``input_shape`` when used as a layer; return the output shape."""
        if not self.built:
            self.build(input_shape)
        output_shape = self.output_shape
        assert output_shape is not None
        return output_shape

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Run the layers in order on a tensor."""
        for layer in self._layers:
            inputs = layer(inputs, training=training)
        return inputs

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        return self.call(inputs, training=training)

    def regularization_losses(self) -> list[Any]:
        """Weight penalties of every layer, as scalar tensors (call while tracing a step)."""
        return [penalty for layer in self._layers for penalty in layer.regularization_losses()]

    def pop_updates(self) -> list[tuple[Any, Any]]:
        """State updates of the last traced call (of trainable layers only)."""
        updates = []
        for layer in self._layers:
            layer_updates = layer.pop_updates()
            if layer.trainable:
                updates.extend(layer_updates)
        return updates

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """Name, layer configs and input shape (JSON-serialisable)."""
        from minidl.layers import serialize

        layers = [
            {"class_name": "Sequential", "config": layer.get_config()}
            if isinstance(layer, SequentialBase)
            else serialize(layer)
            for layer in self._layers
        ]
        config: dict[str, Any] = {"name": self.name, "layers": layers}
        if self._input_batch_shape is not None:
            config["build_input_shape"] = list(self._input_batch_shape)
        if not self.trainable:
            config["trainable"] = False
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any] | list, custom_objects: dict[str, Any] | None = None
    ) -> Any:
        """Rebuild a model (fresh weights) from ``get_config()``'s output."""
        from minidl.saving import deserialize_layer

        if isinstance(config, list):  # Keras 2.0-2.1 stored only the list of layers
            config = {"layers": config}
        model = cls(name=config.get("name"))
        for spec in config.get("layers", []):
            model.add(deserialize_layer(spec, custom_objects))
        if not model.built and config.get("build_input_shape"):
            model.build(tuple(config["build_input_shape"]))
        model.trainable = bool(config.get("trainable", True))
        return model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self._layers)}>"
