"""Pooling layers on channels-last images: max, average, and their global forms."""

from __future__ import annotations

from typing import Any

from minidl import backend as K
from minidl.backends.shapes import conv_output_length
from minidl.layers import legacy
from minidl.layers.base import Layer
from minidl.layers.convolutional import IMAGE_LAYOUT, check_data_format
from minidl.layers.data_format import channels_first_capable

ShapeTuple = tuple[int | None, ...]


@legacy.keras1_arguments(legacy.POOL_RENAMES)
@channels_first_capable
class _Pooling2D(Layer):
    """Shared code of MaxPooling2D and AveragePooling2D."""

    pool_mode = "max"

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = self.int_tuple("pool_size", pool_size, 2)
        self.strides = self.pool_size if strides is None else self.int_tuple("strides", strides, 2)
        self.padding = self.padding_mode(padding)
        check_data_format(self, data_format, channels_first=True)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return K.pool2d(inputs, self.pool_size, self.strides, self.padding, self.pool_mode)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
        rows, cols = (
            conv_output_length(size, k, s, self.padding)
            for size, k, s in zip(input_shape[1:3], self.pool_size, self.strides)
        )
        if (rows is not None and rows < 1) or (cols is not None and cols < 1):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) produces an empty output: a pool "
                f"of size {self.pool_size} with padding='valid' needs an input at least that "
                f"large. Received: input_shape={tuple(input_shape)}"
            )
        return (input_shape[0], rows, cols, input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


class MaxPooling2D(_Pooling2D):
    """Maximum over each ``pool_size`` window (strides default to ``pool_size``)."""

    pool_mode = "max"


class AveragePooling2D(_Pooling2D):
    """Mean over each ``pool_size`` window; with ``"same"`` padding, padded cells don't count."""

    pool_mode = "avg"


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D


@legacy.keras1_arguments(legacy.DIM_ORDERING_RENAMES)
class _GlobalPooling2D(Layer):
    """Shared code of the global pooling layers."""

    def __init__(
        self, keepdims: bool = False, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_data_format(self, data_format, channels_first=True)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
        if self.keepdims:
            return (input_shape[0], 1, 1, input_shape[3])
        return (input_shape[0], input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "keepdims": self.keepdims}


@channels_first_capable
class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over the height and width axes: ``(b, h, w, c) -> (b, c)``."""

    def call(self, inputs: Any, training: bool = False) -> Any:
        return K.mean(inputs, axis=(1, 2), keepdims=self.keepdims)


@channels_first_capable
class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum over the height and width axes: ``(b, h, w, c) -> (b, c)``."""

    def call(self, inputs: Any, training: bool = False) -> Any:
        return K.max(inputs, axis=(1, 2), keepdims=self.keepdims)
