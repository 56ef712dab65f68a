"""Batch normalization (Ioffe & Szegedy, 2015)."""

from __future__ import annotations

from typing import Any

from minidl import backend as K
from minidl import initializers
from minidl.layers import legacy
from minidl.layers.base import Layer

ShapeTuple = tuple[int | None, ...]


@legacy.keras1_arguments(legacy.BATCHNORM_RENAMES)
class BatchNormalization(Layer):
    """Normalize each feature of ``axis`` to zero mean and unit variance, then scale and shift.

    While training, the batch's mean and variance are used and the moving averages are updated
    (``moving = momentum * moving + (1 - momentum) * batch``, with the biased batch variance
    as in Keras 3) through ``add_update``. At
    inference, and whenever the layer is frozen (``trainable=False``), the moving statistics
    are used. Weights, in Keras order: gamma (if ``scale``), beta (if ``center``),
    moving_mean, moving_variance.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise self.invalid_argument("axis", "an integer", axis)
        if isinstance(momentum, bool) or not isinstance(momentum, int | float):
            raise self.invalid_argument("momentum", "a float in the range [0, 1]", momentum)
        if not 0 <= momentum <= 1:
            raise self.invalid_argument("momentum", "a float in the range [0, 1]", momentum)
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or epsilon <= 0:
            raise self.invalid_argument("epsilon", "a positive float", epsilon)
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.gamma: Any = None
        self.beta: Any = None
        self.moving_mean: Any = None
        self.moving_variance: Any = None

    def _feature_axis(self, input_shape: ShapeTuple) -> int:
        rank = len(input_shape)
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(
                f"Layer '{self.name}' (BatchNormalization) cannot normalize over axis "
                f"{self.axis} of a {rank}-D input (axis 0 is the batch axis). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        axis = self.axis % rank
        if input_shape[axis] is None:
            raise ValueError(
                f"Axis {self.axis} of the input of layer '{self.name}' (BatchNormalization) "
                f"must have a known size. Received: input_shape={tuple(input_shape)}"
            )
        return axis

    def build(self, input_shape: ShapeTuple) -> None:
        axis = self._feature_axis(input_shape)
        shape = (int(input_shape[axis]),)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer)
        self.moving_mean = self.add_weight(
            "moving_mean", shape, self.moving_mean_initializer, trainable=False
        )
        self.moving_variance = self.add_weight(
            "moving_variance", shape, self.moving_variance_initializer, trainable=False
        )
        self.built = True

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self._feature_axis(input_shape)
        return tuple(input_shape)

    def call(self, inputs: Any, training: bool = False) -> Any:
        rank = K.ndim(inputs)
        axis = self.axis % rank
        reduction_axes = tuple(i for i in range(rank) if i != axis)
        broadcast_shape = tuple(-1 if i == axis else 1 for i in range(rank))

        def broadcast(vector: Any) -> Any:
            return vector if axis == rank - 1 else K.reshape(vector, broadcast_shape)

        # (x - mean) * (gamma / std) + beta: one pass per step over the activations, the
        # per-channel factors computed on vectors (fewer passes forward and backward than
        # dividing by std, then multiplying by gamma)
        if training and self.trainable:
            mean = K.mean(inputs, axis=reduction_axes, keepdims=True)
            centered = inputs - mean
            variance = K.mean(K.square(centered), axis=reduction_axes, keepdims=True)
            factor = 1.0 / K.sqrt(variance + self.epsilon)
            if self.scale:
                factor = factor * broadcast(self.gamma)
            normalized = centered * factor
            batch_mean = K.reshape(mean, (-1,))
            batch_variance = K.reshape(variance, (-1,))
            keep = self.momentum
            self.add_update(self.moving_mean, keep * self.moving_mean + (1 - keep) * batch_mean)
            self.add_update(
                self.moving_variance, keep * self.moving_variance + (1 - keep) * batch_variance
            )
            if self.center:
                normalized = normalized + broadcast(self.beta)
            return normalized
        # inference: x * factor + (beta - moving_mean * factor), both vectors
        factor = 1.0 / K.sqrt(self.moving_variance + self.epsilon)
        if self.scale:
            factor = factor * self.gamma
        shift = -self.moving_mean * factor
        if self.center:
            shift = shift + self.beta
        return inputs * broadcast(factor) + broadcast(shift)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
        }
