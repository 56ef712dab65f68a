"""Core layers: InputLayer/Input, Dense, Activation, Dropout, Flatten and Reshape."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from minidl import activations
from minidl import backend as K
from minidl.engine.node import KerasTensor, make_node
from minidl.layers import legacy
from minidl.layers.base import Layer
from minidl.layers.data_format import channels_first_capable, resolve_data_format
from minidl.layers.kernel_layer import KernelLayer

ShapeTuple = tuple[int | None, ...]


class InputLayer(Layer):
    """The entry point of a model: fixes the shape (and dtype) of its input.

    Args:
        shape: shape of one sample, without the batch axis (``input_shape`` is an alias).
        batch_size: fixed batch size, or None for any.
        batch_input_shape: the full shape, batch axis included (instead of ``shape``).
    """

    _dtype_may_be_integer = True  # it holds no weights: integer inputs (e.g. word ids) pass

    def __init__(
        self,
        shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        input_shape: Sequence[int | None] | None = None,
        batch_input_shape: Sequence[int | None] | None = None,
        name: str | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> None:
        sample_shape = shape if shape is not None else input_shape
        if batch_input_shape is None and sample_shape is not None:
            if isinstance(sample_shape, int):
                sample_shape = (sample_shape,)
            batch_input_shape = (batch_size, *tuple(sample_shape))
        super().__init__(name=name, batch_input_shape=batch_input_shape, dtype=dtype, **kwargs)
        if self.batch_input_shape is None:
            raise ValueError(
                f"InputLayer '{self.name}' needs the shape of its input: pass `shape=` (one "
                "sample, no batch axis) or `batch_input_shape=`. Received: shape=None"
            )
        if batch_size is not None:
            self.positive_int("batch_size", batch_size)
        if any(d is not None and d < 1 for d in self.batch_input_shape):
            raise self.invalid_argument("shape", "positive dimensions or None", shape)
        self.built = True
        self._build_input_shape = self._build_output_shape = self.batch_input_shape
        make_node(self, [], self.batch_input_shape, self.dtype)  # the graph starts here

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        assert self.batch_input_shape is not None
        input_shape = tuple(input_shape)
        compatible = len(input_shape) == len(self.batch_input_shape) and all(
            a is None or b is None or a == b for a, b in zip(input_shape, self.batch_input_shape)
        )
        if not compatible:
            raise ValueError(
                f"Input of layer '{self.name}' (InputLayer) is incompatible: expected shape "
                f"{self.batch_input_shape}. Received: input_shape={input_shape}"
            )
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("trainable", None)
        return config


def Input(  # noqa: N802 - the Keras name
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    name: str | None = None,
    dtype: str | None = None,
    batch_shape: Sequence[int | None] | None = None,
) -> KerasTensor:
    """Return a symbolic tensor to call layers on (Keras 2's functional API).

    Its shape has the batch axis first (``None`` unless ``batch_size`` is given). It can
    also start a ``Sequential`` model.

    >>> x = Input(shape=(60,), name="features")
    >>> x.shape, x.dtype, x.node.layer.name
    ((None, 60), 'float32', 'features')
    """
    layer = InputLayer(
        shape=shape, batch_size=batch_size, batch_input_shape=batch_shape, name=name, dtype=dtype
    )
    return layer.output


@legacy.keras1_arguments(legacy.DENSE_RENAMES)
class Dense(KernelLayer):
    """Fully connected layer: ``activation(inputs @ kernel + bias)``.

    Args:
        units: number of outputs.
        activation: name or callable (None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: names, dicts or callables (see ``initializers``).
        kernel_regularizer, bias_regularizer: penalties added to the loss, e.g. ``"l2"`` or
            ``regularizers.l2(1e-4)`` (see ``regularizers``).

    The kernel has shape ``(input_dim, units)``. Inputs of rank 2 or 3 are accepted (the last
    axis is transformed); flatten images first.
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Any], Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            activation,
            use_bias,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            **kwargs,
        )
        self.units = self.positive_int("units", units)

    def _check_input(self, input_shape: ShapeTuple) -> int:
        rank = len(input_shape)
        if rank not in (2, 3):
            hint = " Add a Flatten layer before it." if rank > 3 else ""
            raise ValueError(
                f"Input 0 of layer '{self.name}' (Dense) is incompatible: expected a 2-D input "
                f"(batch, features) (or 3-D (batch, steps, features)).{hint} "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"The last axis of the input of layer '{self.name}' (Dense) must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if self.kernel is not None and input_shape[-1] != K.int_shape(self.kernel)[0]:
            raise ValueError(
                f"Input 0 of layer '{self.name}' (Dense) is incompatible: expected a last axis "
                f"of {K.int_shape(self.kernel)[0]}. Received: input_shape={tuple(input_shape)}"
            )
        return int(input_shape[-1])

    def build(self, input_shape: ShapeTuple) -> None:
        self.add_kernel_and_bias((self._check_input(input_shape), self.units))

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.add_bias_and_activate(K.dot(inputs, self.kernel))

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self._check_input(input_shape)
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            **self.kernel_config(),
        }


class Activation(Layer):
    """Apply an activation function (by name or callable) element-wise."""

    def __init__(self, activation: str | Callable[[Any], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.activation(inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


@legacy.keras1_arguments(legacy.DROPOUT_RENAMES)
class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs while training and scale the rest up.

    At inference the layer is the identity. ``seed`` fixes the sequence of masks.
    ``noise_shape`` (Keras 2) shares one mask along its axes of size 1: for inputs
    ``(batch, timesteps, features)``, ``noise_shape=(None, 1, None)`` drops the same features
    at every timestep (``None`` means the input's size).
    """

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if noise_shape is not None and (
            not isinstance(noise_shape, list | tuple)
            or not all(d is None or (isinstance(d, int) and d >= 1) for d in noise_shape)
        ):
            raise self.invalid_argument(
                "noise_shape", "None or a tuple of positive integers or None", noise_shape
            )
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise self.invalid_argument("rate", "a float in the range [0, 1)", rate)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise self.invalid_argument("seed", "an integer or None", seed)
        self.rate = float(rate)
        self.seed = seed

    def _shared_axes(self, shape: Sequence[int | None]) -> tuple[int, ...]:
        """Axes along which the mask is shared (``noise_shape`` entries of 1)."""
        if self.noise_shape is None:
            return ()
        if len(self.noise_shape) != len(shape):
            raise ValueError(
                f"Layer '{self.name}' (Dropout): noise_shape {self.noise_shape} must have the "
                f"rank of the input. Received: input shape {tuple(shape)}"
            )
        shared = []
        for axis, (noise, size) in enumerate(zip(self.noise_shape, shape)):
            if noise is None or noise == size or (noise != 1 and size is None):
                continue
            if noise != 1:
                raise ValueError(
                    f"Layer '{self.name}' (Dropout): each noise_shape entry must be 1, None or "
                    f"the input's size. Received: noise_shape={self.noise_shape} for input "
                    f"shape {tuple(shape)}"
                )
            shared.append(axis)
        return tuple(shared)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self._shared_axes(input_shape)
        return tuple(input_shape)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.rate == 0:
            return inputs
        shape = self._build_input_shape
        shared = self._shared_axes(shape if shape is not None else K.int_shape(inputs))
        if not shared:
            return K.dropout(inputs, self.rate, seed=self.seed)
        # one cell along each shared axis, turned into ones (x ** 0 is 1 for every float),
        # so the mask never depends on the values; it broadcasts back over the shared axes
        rank = K.ndim(inputs)
        size = tuple(1 if axis in shared else -1 for axis in range(rank))
        corner = K.slice(inputs, (0,) * rank, size)
        ones = K.stop_gradient(K.pow(corner, 0.0))
        return inputs * K.dropout(ones, self.rate, seed=self.seed)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "rate": self.rate, "seed": self.seed}
        if self.noise_shape is not None:
            config["noise_shape"] = list(self.noise_shape)
        return config


@channels_first_capable
class Flatten(Layer):
    """Flatten every axis but the batch axis: ``(batch, d1, d2, ...) -> (batch, d1*d2*...)``.

    With ``data_format="channels_first"`` (or that global default) axis 1 is moved last
    first, so the flattened order is the channels-last one, as in Keras 2.
    """

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = resolve_data_format(self, data_format, channels_first=True)

    def call(self, inputs: Any, training: bool = False) -> Any:
        rank = K.ndim(inputs)
        if rank == 1:
            return K.expand_dims(inputs, -1)
        return inputs if rank == 2 else K.batch_flatten(inputs)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        input_shape = tuple(input_shape)
        if len(input_shape) < 1:
            raise ValueError(
                f"Layer '{self.name}' (Flatten) needs an input with a batch axis. "
                f"Received: input_shape={input_shape}"
            )
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1, inferred)."""

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        expected = "a tuple of positive integers with at most one -1"
        if not isinstance(target_shape, list | tuple):
            raise self.invalid_argument("target_shape", expected, target_shape)
        values = tuple(target_shape)
        if (
            any(isinstance(v, bool) or not isinstance(v, int) for v in values)
            or any(v < 1 and v != -1 for v in values)
            or values.count(-1) > 1
        ):
            raise self.invalid_argument("target_shape", expected, target_shape)
        self.target_shape = values

    def _resolved_target(self, input_shape: ShapeTuple) -> ShapeTuple:
        sample = tuple(input_shape)[1:]
        if any(d is None for d in sample):
            if -1 in self.target_shape:
                return tuple(None if d == -1 else d for d in self.target_shape)
            return self.target_shape
        size = math.prod(sample)
        known = math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (
            -1 not in self.target_shape and size != known
        ):
            raise ValueError(
                f"Layer '{self.name}' (Reshape) cannot reshape samples of shape {sample} "
                f"({size} values) to target_shape={self.target_shape}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def build(self, input_shape: ShapeTuple) -> None:
        target = self._resolved_target(input_shape)
        if any(d is None for d in target):
            raise ValueError(
                f"Layer '{self.name}' (Reshape) cannot infer the -1 in target_shape="
                f"{self.target_shape} from an input with unknown dimensions. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._target = target
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        return K.reshape(inputs, (-1, *self._target))

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        return (tuple(input_shape)[0], *self._resolved_target(input_shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}
