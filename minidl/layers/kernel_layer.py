"""The part Dense and Conv2D share: an activation, a kernel and an optional bias."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minidl import activations, constraints, initializers, regularizers
from minidl.layers.base import Layer


class KernelLayer(Layer):
    """A layer computing ``activation(transform(inputs, kernel) + bias)``.

    Args:
        activation: name or callable (None: linear).
        use_bias: whether to add a bias per output channel.
        kernel_initializer, bias_initializer: names, dicts or callables (see ``initializers``).
        kernel_regularizer, bias_regularizer: penalties added to the loss, e.g. ``"l2"``.
        kernel_constraint, bias_constraint: projections applied after every optimizer step,
            e.g. ``constraints.max_norm(3)`` (see ``minidl.constraints``).
    """

    def __init__(
        self,
        activation: str | Callable[[Any], Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel: Any = None
        self.bias: Any = None

    def add_kernel_and_bias(
        self, kernel_shape: tuple[int, ...], bias_size: int | None = None
    ) -> None:
        """Create ``kernel`` and, with ``use_bias``, a bias (``bias_size``: its last axis)."""
        self.kernel = self.add_weight(
            "kernel",
            kernel_shape,
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                "bias",
                (kernel_shape[-1] if bias_size is None else bias_size,),
                self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def add_bias_and_activate(self, outputs: Any) -> Any:
        """Add the bias (if any) to ``outputs`` and apply the activation."""
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def kernel_config(self) -> dict[str, Any]:
        """The shared constructor arguments, serialised for ``get_config``."""
        return {
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": _serialize_constraint(self.kernel_constraint),
            "bias_constraint": _serialize_constraint(self.bias_constraint),
        }


def _serialize_constraint(constraint: Any) -> Any:
    """A constraint for a layer config: minidl's serialized form; a plain function by name."""
    if constraint is None or isinstance(constraint, constraints.Constraint):
        return constraints.serialize(constraint)
    return getattr(constraint, "__name__", repr(constraint))
