"""The layer contract every minidl layer follows (Keras 2's, trimmed).

A layer validates its hyper-parameters in ``__init__``, creates weights in ``build`` with
``add_weight`` (NumPy initial values from a seeded initializer), computes its output in ``call``
with ``minidl.backend`` ops only, predicts its output shape in pure Python in
``compute_output_shape``, and describes itself in ``get_config``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl import backend as K
from minidl import weight_budget
from minidl.engine import node as node_module
from minidl.layers import argument_checks

_name_counters: dict[str, itertools.count] = {}


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def unique_layer_name(prefix: str) -> str:
    """``dense``, ``dense_1``, ``dense_2``, ... one counter per prefix for the process."""
    counter = _name_counters.setdefault(prefix, itertools.count())
    index = next(counter)
    return prefix if index == 0 else f"{prefix}_{index}"


def reset_layer_names() -> None:
    """Restart automatic layer naming (``dense``, ``dense_1``, ...)."""
    _name_counters.clear()


class Layer:
    """Base class of all layers.

    Args:
        name: the layer's name; defaults to a unique snake-case name of the class.
        trainable: whether ``fit`` updates this layer's trainable weights.
        input_shape: shape of one sample (no batch axis); makes this a model's first layer.
        batch_input_shape: full input shape including the batch size (``None`` allowed).
        input_dim: shorthand for ``input_shape=(input_dim,)``.
        dtype: float dtype of the weights (default ``K.floatx()``).
        activity_regularizer: a penalty on the layer's output added to the training loss
            (Keras 2.2.4: summed over the whole batch), e.g. ``regularizers.l1(1e-5)``.
        weights: initial weight arrays, set when the layer is built (Keras 2's ``weights=``).
    """

    def __init__(
        self,
        name: str | None = None,
        trainable: bool = True,
        input_shape: Sequence[int | None] | None = None,
        batch_input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        dtype: str | None = None,
        activity_regularizer: Any = None,
        weights: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from minidl import regularizers

        self._initial_weights = None if weights is None else [np.asarray(w) for w in weights]
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._activity_penalties: list[Any] = []
        self._constraints: dict[int, Callable[[Any], Any]] = {}
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
        self.name = name or unique_layer_name(_snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = argument_checks.layer_dtype(self, dtype)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (None, *tuple(input_shape))
        self.batch_input_shape: tuple[int | None, ...] | None = argument_checks.batch_shape(
            self, batch_input_shape
        )
        self.built = False
        self._build_input_shape: Any = None
        self._build_output_shape: Any = None
        self.inbound_nodes: list[Any] = []
        self.outbound_nodes: list[Any] = []
        self._trainable_weights: list[Any] = []
        self._non_trainable_weights: list[Any] = []
        self._weight_names: dict[int, str] = {}
        self._pending_updates: list[tuple[Any, Any]] = []
        self._regularized: list[tuple[Callable[[Any], Any], Any]] = []

    # ------------------------------------------------------------------ the contract
    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the layer's weights for inputs of ``input_shape`` (batch axis included)."""
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Compute the output tensor from ``inputs`` with ``K`` ops."""
        return inputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """Output shape (batch axis included) for ``input_shape``, in pure Python."""
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        if self.dtype != "float32":
            config["dtype"] = self.dtype
        if self.activity_regularizer is not None:
            from minidl import regularizers

            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from ``get_config()``'s output."""
        return cls(**config)

    # ------------------------------------------------------------- validation helpers
    def invalid_argument(self, argument: str, expected: str, value: Any) -> ValueError:
        """A ``ValueError`` in Keras-3 wording for a bad constructor argument of this layer."""
        return ValueError(
            f"Invalid value for argument `{argument}` of {type(self).__name__} layer "
            f"'{self.name}': expected {expected}. Received: {argument}={value!r}"
        )

    def positive_int(self, argument: str, value: Any) -> int:
        """Return ``value`` if it is a positive int, else raise ``invalid_argument``."""
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise self.invalid_argument(argument, "a positive integer", value)
        return int(value)

    def int_tuple(self, argument: str, value: Any, n: int) -> tuple[int, ...]:
        """Return ``value`` (an int or ``n`` ints) as a tuple of ``n`` positive ints."""
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            value_tuple: Any = (int(value),) * n
        elif isinstance(value, list | tuple):
            value_tuple = tuple(value)
        else:
            value_tuple = None
        if (
            value_tuple is None
            or len(value_tuple) != n
            or any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in value_tuple)
            or any(v < 1 for v in value_tuple)
        ):
            raise self.invalid_argument(
                argument, f"a positive integer or a tuple of {n} positive integers", value
            )
        return tuple(int(v) for v in value_tuple)

    def padding_mode(self, value: Any) -> str:
        """Return ``"valid"`` or ``"same"`` (case-insensitive), else raise ``invalid_argument``."""
        mode = value.lower() if isinstance(value, str) else None
        if mode not in ("valid", "same"):
            raise self.invalid_argument("padding", "one of 'valid', 'same'", value)
        return mode

    def check_input_rank(
        self, input_shape: Sequence[int | None], rank: int, layout: str, hint: str = ""
    ) -> None:
        """Raise a ``ValueError`` naming this layer when ``input_shape`` is not of ``rank``."""
        if len(tuple(input_shape)) != rank:
            raise ValueError(
                f"Input 0 of layer '{self.name}' ({type(self).__name__}) is incompatible: "
                f"expected a {rank}-D input {layout}.{hint} Received: input_shape="
                f"{tuple(input_shape)}"
            )

    # -------------------------------------------------------------------- helpers
    def __call__(self, inputs: Any, training: Any = None, **kwargs: Any) -> Any:
        """Run ``call`` on backend tensors, or on symbolic tensors add this call to the graph.

        On symbolic tensors (from ``Input``) the layer is built for their shapes and new
        symbolic tensors are returned; ``training=True/False`` given there is kept for the
        call. On backend tensors the layer must already be built.
        """
        if node_module.is_symbolic(inputs):
            if kwargs:
                raise TypeError(
                    f"Layer {self.name!r} got unexpected call arguments. Received: {kwargs}"
                )
            return self._call_symbolic(inputs, {} if training is None else {"training": training})
        if isinstance(inputs, (list, tuple)) and any(
            isinstance(v, node_module.KerasTensor) for v in inputs
        ):
            raise TypeError(
                f"Layer {self.name!r} was called on a mix of symbolic tensors (from `Input`) "
                f"and other values; pass only tensors of one graph. Received: {inputs!r}"
            )
        if not self.built:
            raise RuntimeError(
                f"Layer {self.name!r} must be built before it is called: call "
                f"layer.build_for(input_shape) or add it to a model first."
            )
        outputs = self.call(inputs, training=bool(training), **kwargs)
        self.add_activity_penalty(outputs)
        return outputs

    def _call_symbolic(self, inputs: Any, call_kwargs: dict[str, Any]) -> Any:
        """Build for the symbolic inputs' shapes and record the call as a graph node."""
        tensors = node_module.as_list(inputs)
        shapes = [t.shape for t in tensors]
        shape: Any = shapes if isinstance(inputs, (list, tuple)) else shapes[0]
        self._check_built_shape(shape)
        output_shape = self.build_for(shape)
        dtype = self.dtype if self._trainable_weights or self._non_trainable_weights else None
        return node_module.make_node(
            self, inputs, output_shape, dtype or tensors[0].dtype, call_kwargs
        )

    def _check_built_shape(self, shape: Any) -> None:
        """Raise when a built layer with weights meets inputs of another shape."""
        expected = self._build_input_shape
        if not self.built or expected is None or not self.weights:
            return
        pairs = list(zip(expected, shape)) if isinstance(shape, list) else [(expected, shape)]
        for want, got in pairs:
            want, got = tuple(want), tuple(got)
            if len(want) != len(got) or any(
                a is not None and b is not None and a != b for a, b in zip(want[1:], got[1:])
            ):
                raise ValueError(
                    f"Layer {self.name!r} was built for inputs of shape {expected} and "
                    f"cannot take inputs of another shape. Received: shape {shape}"
                )

    def build_for(self, input_shape: Any) -> Any:
        """Build (once) for ``input_shape`` and return the output shape; records both.

        ``input_shape`` is one shape, or a list of shapes for a layer taking several inputs.
        """
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], Sequence):
            input_shape = [tuple(s) for s in input_shape]
        else:
            input_shape = tuple(input_shape)
        if not self.built:
            self.build(input_shape)
            self.built = True
            initial = getattr(self, "_initial_weights", None)
            if initial is not None:
                self._initial_weights = None
                self.set_weights(initial)
        output_shape = self.compute_output_shape(input_shape)
        if (
            isinstance(output_shape, list)
            and output_shape
            and isinstance(output_shape[0], Sequence)
        ):
            output_shape = [tuple(s) for s in output_shape]
        else:
            output_shape = tuple(output_shape)
        self._build_input_shape = input_shape
        self._build_output_shape = output_shape
        return output_shape

    # ------------------------------------------------------------- graph inspection
    def _single_node(self, what: str) -> Any:
        if not self.inbound_nodes:
            raise AttributeError(
                f"Layer {self.name!r} is not connected, so it has no {what}: call it on a "
                "tensor from `Input` (or add it to a model with a known input shape) first."
            )
        if len(self.inbound_nodes) > 1:
            raise AttributeError(
                f"Layer {self.name!r} has been called {len(self.inbound_nodes)} times, so its "
                f"{what} is ambiguous. Use get_{what.replace(' ', '_')}_at(node_index). "
                f"Received: {len(self.inbound_nodes)} inbound nodes"
            )
        return self.inbound_nodes[0]

    @property
    def input(self) -> Any:
        """The symbolic input tensor(s) of this layer's only call."""
        self._single_node("input")
        return self.get_input_at(0)

    @property
    def output(self) -> Any:
        """The symbolic output tensor(s) of this layer's only call."""
        self._single_node("output")
        return self.get_output_at(0)

    def get_input_at(self, node_index: int) -> Any:
        """The symbolic input tensor(s) of call ``node_index``."""
        node = self._node_at(node_index)
        return list(node.inputs) if node.input_was_list else node.inputs[0]

    def get_output_at(self, node_index: int) -> Any:
        """The symbolic output tensor(s) of call ``node_index``."""
        node = self._node_at(node_index)
        return list(node.outputs) if len(node.outputs) > 1 else node.outputs[0]

    def get_input_shape_at(self, node_index: int) -> Any:
        """The input shape(s) of call ``node_index``."""
        return self._node_at(node_index).input_shapes

    def get_output_shape_at(self, node_index: int) -> Any:
        """The output shape(s) of call ``node_index``."""
        return self._node_at(node_index).output_shapes

    def _node_at(self, node_index: int) -> Any:
        if not 0 <= node_index < len(self.inbound_nodes):
            raise ValueError(
                f"Layer {self.name!r} has {len(self.inbound_nodes)} inbound nodes. "
                f"Received: node_index={node_index}"
            )
        return self.inbound_nodes[node_index]

    @property
    def input_shape(self) -> Any:
        """Input shape (batch axis included); ``None`` before the layer is built."""
        return self._shape_of_every_call("input")

    @property
    def output_shape(self) -> Any:
        """Output shape (batch axis included); ``None`` before the layer is built."""
        return self._shape_of_every_call("output")

    def _shape_of_every_call(self, side: str) -> Any:
        """The ``side`` ("input"/"output") shape all calls share (the built one if no call)."""
        shapes = {}
        for node in self.inbound_nodes:
            shape = getattr(node, f"{side}_shapes")
            shapes[repr(shape)] = shape
        if len(shapes) > 1:
            raise AttributeError(
                f"Layer {self.name!r} has been called on inputs of different shapes, so its "
                f"{side} shape is ambiguous: use get_{side}_shape_at(node_index). "
                f"Received: {list(shapes.values())}"
            )
        return next(iter(shapes.values())) if shapes else getattr(self, f"_build_{side}_shape")

    def add_weight(
        self,
        name: str,
        shape: Sequence[int],
        initializer: Callable[..., np.ndarray] | str = "glorot_uniform",
        trainable: bool = True,
        dtype: str | None = None,
        seed: int | None = None,
        regularizer: Callable[[Any], Any] | None = None,
        constraint: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Create a backend variable from a NumPy initializer and register it.

        ``initializer`` is a name from ``minidl.initializers`` or a callable
        ``(shape, dtype) -> np.ndarray``; Keras names the weight ``"<layer>/<name>:0"``.
        A ``seed`` replaces the seed of a random built-in initializer. A ``regularizer``
        (``weight -> scalar tensor``) adds a penalty to the training loss; a ``constraint``
        (``weight -> weight``) projects the weight after every optimizer step.
        """
        from minidl import initializers

        init = initializers.get(initializer)
        if seed is not None and isinstance(init, initializers.Initializer):
            config = init.get_config()
            if "seed" in config:
                init = type(init).from_config({**config, "seed": seed})
        shape = tuple(int(d) for d in shape)
        weight_budget.charge(self.name, name, shape, dtype or self.dtype, self.get_config)
        value = np.asarray(init(shape, dtype or self.dtype), dtype=dtype or self.dtype)
        if value.shape != shape:
            raise ValueError(
                f"Initializer for weight {name!r} of layer {self.name!r} must return an array "
                f"of shape {shape}. Received: an array of shape {value.shape}"
            )
        variable = K.variable(value, dtype=dtype or self.dtype, name=f"{self.name}/{name}")
        self._weight_names[id(variable)] = f"{self.name}/{name}:0"
        (self._trainable_weights if trainable else self._non_trainable_weights).append(variable)
        if regularizer is not None:
            self._regularized.append((regularizer, variable))
        if constraint is not None:
            self._constraints[id(variable)] = constraint
        return variable

    def weight_constraint(self, variable: Any) -> Callable[[Any], Any] | None:
        """The constraint given to ``add_weight`` for ``variable`` (None when there is none)."""
        return getattr(self, "_constraints", {}).get(id(variable))

    def add_activity_penalty(self, outputs: Any) -> None:
        """Record ``activity_regularizer(outputs)`` for the loss (called by the graph runner)."""
        if getattr(self, "activity_regularizer", None) is not None:
            for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
                self._activity_penalties.append(self.activity_regularizer(output))

    def regularization_losses(self) -> list[Any]:
        """The weight and activity penalties of this layer as scalar tensors (call while
        tracing a step, after the forward pass; the activity terms are handed out once)."""
        activity, self._activity_penalties = getattr(self, "_activity_penalties", []), []
        return [regularizer(variable) for regularizer, variable in self._regularized] + activity

    def add_update(self, variable: Any, new_value: Any) -> None:
        """Register a state update made during ``call`` (e.g. moving averages)."""
        self._pending_updates.append((variable, new_value))

    def pop_updates(self) -> list[tuple[Any, Any]]:
        """Return and forget the updates registered by the last traced ``call``."""
        updates, self._pending_updates = self._pending_updates, []
        return updates

    @property
    def trainable_weights(self) -> list[Any]:
        return list(self._trainable_weights) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        if self.trainable:
            return list(self._non_trainable_weights)
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    @property
    def weights(self) -> list[Any]:
        """All weights in Keras order: trainable ones first, in creation order."""
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    def weight_name(self, variable: Any) -> str:
        """Keras name of one of this layer's weights, e.g. ``"dense/kernel:0"``."""
        return self._weight_names[id(variable)]

    def count_params(self) -> int:
        """Number of scalars in all weights."""
        return int(sum(int(np.prod(K.int_shape(w))) for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        """Weights as NumPy arrays, in ``weights`` order."""
        return [K.get_value(w) for w in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Assign NumPy arrays to the weights; all shapes are checked before any is written."""
        assign_weights("layer", self.name, self.weights, weights, self.weight_name, K)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def assign_weights(
    owner_kind: str,
    owner_name: str,
    variables: Sequence[Any],
    weights: Sequence[Any],
    weight_name: Callable[[Any], str],
    backend: Any,
) -> None:
    """Assign ``weights`` to ``variables`` all or nothing: every shape is checked first.

    ``owner_kind`` (``"layer"`` or ``"model"``) and ``owner_name`` go into the error message;
    ``backend`` is the module holding the variables.
    """
    if len(weights) != len(variables):
        raise ValueError(
            f"{owner_kind.capitalize()} {owner_name!r} expects {len(variables)} weight arrays "
            f"(shapes {[tuple(backend.int_shape(v)) for v in variables]}). "
            f"Received: {len(weights)} arrays."
        )
    arrays = [np.asarray(w) for w in weights]
    for variable, array in zip(variables, arrays):
        expected = tuple(backend.int_shape(variable))
        if tuple(array.shape) != expected:
            raise ValueError(
                f"Weight {weight_name(variable)!r} of {owner_kind} {owner_name!r} has shape "
                f"{expected}. Received: an array of shape {tuple(array.shape)}."
            )
    for variable, array in zip(variables, arrays):
        backend.set_value(variable, array)
