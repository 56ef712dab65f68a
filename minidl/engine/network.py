"""A graph of layers from inputs to outputs that is itself a layer (Keras 2's Network).

``Network`` holds the structure (inputs, outputs, layers in Keras 2 order), the weights,
inspection (``get_layer``, ``input_shape``...), the backend the weights live on, and runs the
graph on backend tensors. Because it is a ``Layer``, a model can be called on symbolic tensors
inside another model. ``Model`` adds compile/fit/evaluate/predict; ``Sequential`` builds the
graph one layer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.engine import serialization
from minidl.engine.graph import GraphPlan, plan_graph, run_graph
from minidl.engine.node import KerasTensor, as_list
from minidl.engine.steps import StepCache
from minidl.layers import base as layer_base

ShapeTuple = tuple[int | None, ...]


def _pick_keras_keywords(
    inputs: Any, outputs: Any, kwargs: dict[str, Any]
) -> tuple[Any, Any, dict[str, Any]]:
    """Accept Keras 2's ``input=`` / ``output=`` keywords as ``inputs`` / ``outputs``."""
    if "input" in kwargs:
        if inputs is not None:
            raise TypeError("Pass either `inputs` or `input`, not both.")
        inputs = kwargs.pop("input")
    if "output" in kwargs:
        if outputs is not None:
            raise TypeError("Pass either `outputs` or `output`, not both.")
        outputs = kwargs.pop("output")
    return inputs, outputs, kwargs


def _check_tensors(values: Any, what: str, model_name: str) -> list[KerasTensor]:
    tensors = as_list(values)
    for tensor in tensors:
        if not isinstance(tensor, KerasTensor):
            raise TypeError(
                f"`{what}` of model {model_name!r} must be symbolic tensors (from "
                f"minidl.layers.Input and layer calls). Received: {tensor!r} of type "
                f"{type(tensor).__name__}"
            )
    if not tensors:
        raise ValueError(
            f"Model {model_name!r} needs at least one tensor in `{what}`. Received: {values!r}"
        )
    return tensors


class Network(layer_base.Layer):
    """Layers connected from ``inputs`` to ``outputs``; usable as a layer in another model.

    Args:
        inputs: a tensor from ``Input`` or a list of them (Keras 2 also says ``input=``).
        outputs: the tensor(s) to compute from them (Keras 2 also says ``output=``).
        name: the model's name (default ``model``, ``model_1``, ...).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        serialization.register_network_class(cls)

    def __init__(
        self, inputs: Any = None, outputs: Any = None, name: str | None = None, **kwargs: Any
    ) -> None:
        inputs, outputs, kwargs = _pick_keras_keywords(inputs, outputs, kwargs)
        trainable = kwargs.pop("trainable", True)
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        prefix = "model" if type(self).__name__ in ("Network", "Model") else None
        super().__init__(name=name or layer_base.unique_layer_name(prefix or _snake(self)))
        self.trainable = bool(trainable)
        self.stop_training = False
        self.steps = StepCache()
        self.inputs: list[KerasTensor] = []
        self.outputs: list[KerasTensor] = []
        self._layers: list[Any] = []
        self._plan: GraphPlan | None = None
        self._backend_name: str | None = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError(
                    f"Model {self.name!r} needs both `inputs` and `outputs`. Received: "
                    f"inputs={inputs!r}, outputs={outputs!r}"
                )
            self._init_graph(inputs, outputs)

    # ------------------------------------------------------------------- the graph
    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        """Check and adopt the graph from ``inputs`` to ``outputs`` (nothing changes on error)."""
        input_list = _check_tensors(inputs, "inputs", self.name)
        output_list = _check_tensors(outputs, "outputs", self.name)
        for tensor in input_list:
            if tensor.node.inputs:
                raise ValueError(
                    f"Inputs of model {self.name!r} must come from minidl.layers.Input. "
                    f"Received: {tensor!r}, an output of layer {tensor.node.layer.name!r}"
                )
        if len({id(t) for t in input_list}) != len(input_list):
            raise ValueError(
                f"The same input tensor is given twice to model {self.name!r}. "
                f"Received: inputs={[t.name for t in input_list]}"
            )
        plan = plan_graph(input_list, output_list, owner=f"model {self.name!r}")
        names = [layer.name for layer in plan.layers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"All layer names in model {self.name!r} must be unique. Received: the name "
                f"{repeated[0]!r} is used by {names.count(repeated[0])} different layers"
            )
        for layer in plan.layers:
            if layer is self:
                raise ValueError(f"Model {self.name!r} cannot contain itself.")
            self._check_layer_backend(layer)
        self._bind_backend()
        self.inputs, self.outputs = input_list, output_list
        self._plan = plan
        self._layers = list(plan.layers)
        shapes = [t.shape for t in input_list]
        self._build_input_shape = shapes if len(shapes) > 1 else shapes[0]
        out_shapes = [t.shape for t in output_list]
        self._build_output_shape = out_shapes if len(out_shapes) > 1 else out_shapes[0]
        self.built = True
        self.steps.clear()
        self._on_built()

    def _on_built(self) -> None:
        """Hook for subclasses, called after the graph is (re)built."""

    @property
    def layers(self) -> list[Any]:
        """The layers in Keras 2 order, input layers included (a new list)."""
        return list(self._layers)

    @property
    def input_layers(self) -> list[Any]:
        return [t.node.layer for t in self.inputs]

    @property
    def output_layers(self) -> list[Any]:
        return [t.node.layer for t in self.outputs]

    @property
    def input_names(self) -> list[str]:
        """Names of the input layers, the keys of a dict given as ``x``."""
        return [t.node.layer.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Names of the layers making the outputs, the keys of dicts given as ``y``."""
        return [t.node.layer.name for t in self.outputs]

    def _single_or_list(self, values: list[Any]) -> Any:
        """One value for one input or output (as Keras 2 returns), else the list."""
        return list(values) if len(values) > 1 else values[0]

    @property
    def input(self) -> Any:
        """The model's input tensor (a list when it has several)."""
        self._require_graph("input")
        return self._single_or_list(self.inputs)

    @property
    def output(self) -> Any:
        """The model's output tensor (a list when it has several)."""
        self._require_graph("output")
        return self._single_or_list(self.outputs)

    @property
    def input_shape(self) -> Any:
        """Input shape with the batch axis (a list for several inputs; None until built)."""
        if not self.inputs:
            return None
        return self._single_or_list([t.shape for t in self.inputs])

    @property
    def output_shape(self) -> Any:
        """Output shape with the batch axis (a list for several outputs; None until built)."""
        if not self.outputs:
            return None
        return self._single_or_list([t.shape for t in self.outputs])

    @property
    def batch_input_shape(self) -> Any:
        return self.input_shape

    @batch_input_shape.setter
    def batch_input_shape(self, value: Any) -> None:  # Layer.__init__ sets it
        self._declared_batch_input_shape = value

    def _require_graph(self, what: str) -> None:
        if not self.inputs:
            raise AttributeError(
                f"Model {self.name!r} has no {what} yet: it is not built. Give it an input "
                "shape, call build(input_shape), or fit it first."
            )

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """Return a layer by name, or by index in ``layers``."""
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int | np.integer):
                raise TypeError(f"`index` must be an integer. Received: index={index!r}")
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Model {self.name!r} has {len(layers)} layers. Received: index={index}"
                )
            return layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or a layer index. Received: neither")
        for layer in layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in layers]
        raise ValueError(f"No such layer: {name!r} in model {self.name!r}. Layers: {names}")

    # ------------------------------------------------------------------- backends
    def _bind_backend(self) -> None:
        if self._backend_name is None:
            self._backend_name = K.name()
        else:
            self.require_backend()

    def _check_layer_backend(self, layer: Any) -> None:
        if isinstance(layer, Network):
            if layer._backend_name is not None and layer._backend_name != K.name():
                layer.require_backend()
            return
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
        return _unique([w for layer in self._layers for w in layer.weights])

    @property
    def trainable_weights(self) -> list[Any]:
        if not self.trainable:
            return []
        return _unique([w for layer in self._layers for w in layer.trainable_weights])

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
    def build(self, input_shape: Any = None) -> None:
        """A graph model is built when created; ``input_shape`` must match its inputs."""
        if input_shape is not None and self.inputs:
            self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape(s) for ``input_shape``, propagated through every layer's own rule."""
        self._require_graph("output shape")
        assert self._plan is not None
        given = input_shape if isinstance(input_shape, list) else [input_shape]
        if len(given) != len(self.inputs):
            raise ValueError(
                f"Model {self.name!r} expects {len(self.inputs)} inputs. "
                f"Received: {len(given)} input shapes"
            )
        shapes: dict[int, Any] = {}
        for tensor, shape in zip(self.inputs, given):
            expected = tensor.shape
            shape = tuple(shape)
            if len(shape) != len(expected) or any(
                a is not None and b is not None and a != b for a, b in zip(shape, expected)
            ):
                raise ValueError(
                    f"Input {tensor.node.layer.name!r} of model {self.name!r} is incompatible: "
                    f"expected shape {expected}. Received: input_shape={shape}"
                )
            shapes[id(tensor)] = shape
        for node in self._plan.nodes:
            if all(id(t) in shapes for t in node.outputs):
                continue
            args = [shapes[id(t)] for t in node.inputs]
            result = node.layer.compute_output_shape(args if node.input_was_list else args[0])
            several = len(node.outputs) > 1
            for tensor, shape in zip(node.outputs, result if several else [result]):
                shapes[id(tensor)] = tuple(shape)
        out = [shapes[id(t)] for t in self.outputs]
        return out if len(out) > 1 else out[0]

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Run the graph on backend tensors; one tensor or a list, like ``inputs``/``outputs``."""
        self._require_graph("graph to run")
        assert self._plan is not None
        values = as_list(inputs) if len(self.inputs) > 1 or isinstance(inputs, list) else [inputs]
        if len(values) != len(self.inputs):
            raise ValueError(
                f"Model {self.name!r} expects {len(self.inputs)} inputs. "
                f"Received: {len(values)} tensors"
            )
        results = run_graph(self._plan, self.inputs, self.outputs, values, training)
        return results if len(results) > 1 else results[0]

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
        """Keras 2's Model config: ``layers`` with ``inbound_nodes``, input and output layers."""
        return serialization.network_config(self)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Any:
        """Rebuild a model (fresh weights) from ``get_config()``'s output."""
        inputs, outputs, name = serialization.graph_from_config(config, custom_objects)
        model = cls(inputs=inputs, outputs=outputs, name=name)
        model.trainable = bool(config.get("trainable", True))
        return model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self._layers)}>"


def _snake(model: Any) -> str:
    return layer_base._snake_case(type(model).__name__)


def _unique(variables: list[Any]) -> list[Any]:
    seen: set[int] = set()
    result = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            result.append(variable)
    return result


serialization.register_network_class(Network)
