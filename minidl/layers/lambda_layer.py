"""Lambda: wrap a Python function of backend tensors as a layer, and save it safely.

A saved ``Lambda`` records only the *name* of its function (and of an ``output_shape``
function), never its code: loading a model never runs code taken from a file. The function
comes back from ``custom_objects`` under that name (for an anonymous ``lambda``, under the
layer's name); without it, loading fails with a ``ValueError`` naming the layer.

>>> from minidl import layers
>>> def double(x):
...     return x * 2.0
>>> config = layers.Lambda(double, name="twice").get_config()
>>> config["function"], config["function_type"]
('double', 'function')
>>> layers.Lambda.from_config(config, custom_objects={"double": double}).function is double
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.layers.base import Layer

ShapeTuple = tuple[int | None, ...]
OutputShape = Sequence[int | None] | Callable[[Any], Any] | None


def _is_shape_list(shape: Any) -> bool:
    return isinstance(shape, list) and bool(shape) and isinstance(shape[0], list | tuple)


def _function_name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", type(function).__name__)


class Lambda(Layer):
    """Apply ``function(inputs, **arguments)``, written with ``minidl.backend`` ops.

    Args:
        function: a callable taking the input tensor (or list of tensors) and returning a
            tensor. Saved by name only (see the module docstring).
        output_shape: the output shape without the batch axis (a tuple), or a function of
            the input shape (batch axis included) returning the full output shape. None: the
            shape is found by evaluating ``function`` once on zeros (a batch of 1) when every
            input size after the batch axis is known, else assumed equal to the input's.
        mask: accepted for Keras 2 compatibility; only None is supported.
        arguments: keyword arguments passed to ``function`` (JSON-serialisable to save).
    """

    def __init__(
        self,
        function: Callable[..., Any],
        output_shape: OutputShape = None,
        mask: Any = None,
        arguments: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(function):
            raise self.invalid_argument("function", "a callable", function)
        if mask is not None:
            raise self.invalid_argument("mask", "None (masking is not supported)", mask)
        if output_shape is not None and not callable(output_shape):
            if not isinstance(output_shape, list | tuple) or any(
                d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0)
                for d in output_shape
            ):
                raise self.invalid_argument(
                    "output_shape", "None, a tuple of sizes or a function", output_shape
                )
            output_shape = tuple(output_shape)
        if arguments is not None and not isinstance(arguments, dict):
            raise self.invalid_argument("arguments", "a dict or None", arguments)
        self.function = function
        self.output_shape_spec = output_shape
        self.arguments = dict(arguments or {})
        self._inferred: dict[Any, Any] = {}

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape: Any) -> Any:
        spec = self.output_shape_spec
        if callable(spec):
            result = spec(input_shape)
            return [tuple(s) for s in result] if _is_shape_list(result) else tuple(result)
        if spec is not None:
            batch = input_shape[0][0] if _is_shape_list(input_shape) else tuple(input_shape)[0]
            return (batch, *spec)
        return self._infer_output_shape(input_shape)

    def _infer_output_shape(self, input_shape: Any) -> Any:
        shapes = [tuple(s) for s in input_shape] if _is_shape_list(input_shape) else None
        single = None if shapes is not None else tuple(input_shape)
        every = shapes if shapes is not None else [single]
        if any(d is None for s in every for d in s[1:]):
            return shapes if shapes is not None else single  # Keras 2 (Theano)'s assumption
        key = tuple(every)
        if key not in self._inferred:
            probes = [K.variable(np.zeros((1, *s[1:]), dtype="float32")) for s in every]
            value = K.eval(
                self.function(probes if shapes is not None else probes[0], **self.arguments)
            )
            self._inferred[key] = tuple(np.shape(value))[1:]
        return (every[0][0], *self._inferred[key])

    def get_config(self) -> dict[str, Any]:
        spec = self.output_shape_spec
        if callable(spec):
            shape_config: Any = _function_name(spec)
            shape_type = "function"
        else:
            shape_config = None if spec is None else list(spec)
            shape_type = "raw"
        name = _function_name(self.function)
        return {
            **super().get_config(),
            "function": name,
            "function_type": "lambda" if name == "<lambda>" else "function",
            "output_shape": shape_config,
            "output_shape_type": shape_type,
            "arguments": self.arguments,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Lambda:
        """Rebuild the layer, taking its function(s) from ``custom_objects`` by name.

        Raises:
            ValueError: when a function is not in ``custom_objects`` (minidl never runs
                code stored in a config or file).
        """
        config = dict(config)
        objects = dict(custom_objects or {})
        layer_name = config.get("name", "lambda")
        function = cls._lookup(
            objects,
            config.pop("function", None),
            config.pop("function_type", "function"),
            layer_name,
            "function",
        )
        shape = config.pop("output_shape", None)
        shape_type = config.pop("output_shape_type", "raw")
        if shape_type != "raw" and shape is not None:
            shape = cls._lookup(objects, shape, shape_type, layer_name, "output_shape function")
        config.pop("module", None)
        config.pop("output_shape_module", None)
        return cls(function, output_shape=shape, **config)

    @staticmethod
    def _lookup(objects: dict[str, Any], recorded: Any, kind: str, layer: str, what: str) -> Any:
        """The callable saved as ``recorded``, found by name in ``objects`` only."""
        if isinstance(recorded, str) and kind == "function" and recorded != "<lambda>":
            key = recorded
            found = objects.get(recorded)
        else:  # an anonymous lambda, or Keras 2's marshalled bytecode: keyed by layer name
            key = layer
            found = objects.get(layer)
        if callable(found):
            return found
        stored = (
            "Python bytecode"
            if kind == "lambda" and not isinstance(recorded, str)
            else (f"the name {recorded!r}")
        )
        raise ValueError(
            f"Layer '{layer}' (Lambda) needs its {what}, saved as {stored}. minidl never runs "
            f"code taken from a config or file: pass the function when loading, e.g. "
            f"load_model(path, custom_objects={{{key!r}: my_function}}). Received: "
            f"custom_objects keys {sorted(objects)}"
        )
