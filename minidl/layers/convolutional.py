"""Convolution layers on channels-last images: Conv2D, Conv2DTranspose, ZeroPadding2D."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minidl import backend as K
from minidl.backends.shapes import conv_output_length, deconv_output_length
from minidl.layers import legacy
from minidl.layers.base import Layer
from minidl.layers.data_format import channels_first_capable, resolve_data_format
from minidl.layers.kernel_layer import KernelLayer

ShapeTuple = tuple[int | None, ...]
IMAGE_LAYOUT = "(batch, height, width, channels)"


def check_data_format(layer: Layer, data_format: str | None, channels_first: bool = False) -> str:
    """Set and return ``layer.data_format`` (None: ``K.image_data_format()``).

    ``channels_first`` is accepted only by layers decorated with ``channels_first_capable``
    (they transpose around their channels-last code); others accept only channels-last.
    """
    layer.data_format = resolve_data_format(layer, data_format, channels_first)
    return layer.data_format


def set_conv_geometry(
    layer: KernelLayer,
    filters: int,
    kernel_size: Any,
    strides: Any,
    padding: str,
    data_format: str | None,
    dilation_rate: Any,
    dilation_allowed_by: str,
) -> None:
    """Validate and set the hyper-parameters Conv2D and Conv2DTranspose share.

    ``dilation_allowed_by`` names who allows a dilation rate above 1 only with unit strides
    (it ends the error message).
    """
    layer.filters = layer.positive_int("filters", filters)
    layer.kernel_size = layer.int_tuple("kernel_size", kernel_size, 2)
    layer.strides = layer.int_tuple("strides", strides, 2)
    layer.padding = layer.padding_mode(padding)
    check_data_format(layer, data_format, channels_first=True)
    layer.dilation_rate = layer.int_tuple("dilation_rate", dilation_rate, 2)
    if layer.dilation_rate != (1, 1) and layer.strides != (1, 1):
        raise layer.invalid_argument(
            "dilation_rate",
            f"(1, 1) when strides are not 1 (strides={layer.strides}; {dilation_allowed_by} "
            "a dilation rate above 1 only with unit strides)",
            dilation_rate,
        )


def check_image_channels(
    layer: KernelLayer, input_shape: ShapeTuple, kernel_axis: int, class_name: str
) -> int:
    """The channel count of a 4-D ``input_shape``, checked against the kernel's ``kernel_axis``."""
    layer.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(
            f"The channel axis of the input of layer '{layer.name}' ({class_name}) must be "
            f"known. Received: input_shape={tuple(input_shape)}"
        )
    if layer.kernel is not None and channels != K.int_shape(layer.kernel)[kernel_axis]:
        raise ValueError(
            f"Input 0 of layer '{layer.name}' ({class_name}) is incompatible: expected "
            f"{K.int_shape(layer.kernel)[kernel_axis]} channels. Received: input_shape="
            f"{tuple(input_shape)}"
        )
    return int(channels)


def conv_config(layer: KernelLayer) -> dict[str, Any]:
    """The config keys Conv2D and Conv2DTranspose share (their geometry)."""
    return {
        "filters": layer.filters,
        "kernel_size": list(layer.kernel_size),
        "strides": list(layer.strides),
        "padding": layer.padding,
    }


@legacy.keras1_arguments(legacy.CONV_RENAMES, conv_positional=True)
@channels_first_capable
class Conv2D(KernelLayer):
    """2-D convolution (cross-correlation) with a ``(kh, kw, in, filters)`` kernel.

    Args:
        filters: number of output channels.
        kernel_size: an int or ``(kh, kw)``.
        strides: an int or ``(sh, sw)``.
        padding: ``"valid"`` (no padding) or ``"same"`` (output size ``ceil(size / stride)``).
        activation: name or callable (None: linear).
        use_bias: whether to add a bias per filter.
        kernel_initializer, bias_initializer: names, dicts or callables.
        kernel_regularizer, bias_regularizer: penalties added to the loss, e.g. ``"l2"`` or
            ``regularizers.l2(1e-4)`` (see ``regularizers``).
        dilation_rate: an int or ``(dh, dw)``: kernel taps ``dh`` rows and ``dw`` columns
            apart (atrous convolution); above 1 only with ``strides=1``, as in Keras 2.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        activation: str | Callable[[Any], Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, int] = (1, 1),
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
        set_conv_geometry(
            self,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            "Keras 2 and TensorFlow allow",
        )

    def _check_input(self, input_shape: ShapeTuple) -> int:
        return check_image_channels(self, input_shape, 2, "Conv2D")

    def build(self, input_shape: ShapeTuple) -> None:
        channels = self._check_input(input_shape)
        self.add_kernel_and_bias((*self.kernel_size, channels, self.filters))

    def call(self, inputs: Any, training: bool = False) -> Any:
        if self.dilation_rate == (1, 1):
            outputs = K.conv2d(inputs, self.kernel, strides=self.strides, padding=self.padding)
        else:
            outputs = K.conv2d(inputs, self.kernel, self.strides, self.padding, self.dilation_rate)
        return self.add_bias_and_activate(outputs)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self._check_input(input_shape)
        rows, cols = (
            conv_output_length(size, (k - 1) * d + 1, s, self.padding)
            for size, k, s, d in zip(
                input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate
            )
        )
        if (rows is not None and rows < 1) or (cols is not None and cols < 1):
            raise ValueError(
                f"Layer '{self.name}' (Conv2D) produces an empty output: a kernel of size "
                f"{self.kernel_size} with padding='valid' needs an input at least that large. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return (input_shape[0], rows, cols, self.filters)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **conv_config(self),
            "dilation_rate": list(self.dilation_rate),
            **self.kernel_config(),
        }


Convolution2D = Conv2D


@channels_first_capable
class Conv2DTranspose(KernelLayer):
    """Transposed 2-D convolution ("deconvolution"), e.g. to upsample in a U-Net decoder.

    The kernel has Keras 2's layout ``(kh, kw, filters, in_channels)``; the output is the
    gradient of a ``Conv2D`` with that kernel w.r.t. its input. The output size per axis is
    Keras 2's: ``size * stride`` for ``"same"``, ``size * stride + max(k - stride, 0)`` for
    ``"valid"``, or ``(size - 1) * stride + k - 2 * (k // 2 if "same" else 0) +
    output_padding`` when ``output_padding`` is given.

    Args:
        filters: number of output channels.
        kernel_size: an int or ``(kh, kw)``.
        strides: an int or ``(sh, sw)``.
        padding: ``"valid"`` or ``"same"``.
        output_padding: None, an int or ``(ph, pw)``, each smaller than its stride: extra
            rows/columns at the bottom/right of the output.
        dilation_rate: an int or ``(dh, dw)``; above 1 only with ``strides=1`` (as in Keras 2),
            computed as the transposed convolution with zeros between the kernel taps.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer: as in ``Conv2D``.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        output_padding: int | tuple[int, int] | None = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, int] = (1, 1),
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
        set_conv_geometry(
            self,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            "Keras 2 allows",
        )
        self.output_padding = self._output_padding(output_padding)

    @property
    def _effective_kernel_size(self) -> tuple[int, int]:
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))

    def _output_padding(self, value: Any) -> tuple[int, int] | None:
        if value is None:
            return None
        expected = "None, or an int or 2 ints >= 0, each smaller than its stride"
        pair = (value, value) if isinstance(value, int) else value
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in pair)
        ):
            raise self.invalid_argument("output_padding", expected, value)
        if any(p >= s for p, s in zip(pair, self.strides)):
            raise self.invalid_argument(
                "output_padding", f"{expected} (strides={self.strides})", value
            )
        return (int(pair[0]), int(pair[1]))

    def _check_input(self, input_shape: ShapeTuple) -> int:
        return check_image_channels(self, input_shape, 3, "Conv2DTranspose")

    def build(self, input_shape: ShapeTuple) -> None:
        channels = self._check_input(input_shape)
        # Keras 2's transposed kernel layout: (kh, kw, out, in)
        self.add_kernel_and_bias((*self.kernel_size, self.filters, channels), self.filters)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self._check_input(input_shape)
        padding, window = self.output_padding or (None, None), self._effective_kernel_size
        rows, cols = (
            deconv_output_length(size, k, s, self.padding, p)
            for size, k, s, p in zip(input_shape[1:3], window, self.strides, padding)
        )
        for size, out, k, s in zip(input_shape[1:3], (rows, cols), window, self.strides):
            if out is not None and (out < 1 or conv_output_length(out, k, s, self.padding) != size):
                raise ValueError(
                    f"Layer '{self.name}' (Conv2DTranspose) cannot map an input of "
                    f"{tuple(input_shape)} to an output of height/width {(rows, cols)} with "
                    f"kernel_size={self.kernel_size}, strides={self.strides}, padding="
                    f"{self.padding!r}, output_padding={self.output_padding}. Received: "
                    f"input_shape={tuple(input_shape)}"
                )
        return (input_shape[0], rows, cols, self.filters)

    def call(self, inputs: Any, training: bool = False) -> Any:
        shape = self.compute_output_shape(tuple(K.int_shape(inputs)))
        kernel = dilated_kernel(self.kernel, self.dilation_rate)
        outputs = K.conv2d_transpose(inputs, kernel, shape, self.strides, self.padding)
        return self.add_bias_and_activate(outputs)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **conv_config(self),
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "dilation_rate": list(self.dilation_rate),
            **self.kernel_config(),
        }


Deconvolution2D = Conv2DTranspose
Convolution2DTranspose = Conv2DTranspose


def dilated_kernel(kernel: Any, dilation_rate: tuple[int, int]) -> Any:
    """``kernel`` (taps on axes 0 and 1) with ``d - 1`` zero rows/columns between its taps."""
    for axis, rate in enumerate(dilation_rate):
        if rate == 1:
            continue
        shape = list(K.int_shape(kernel))
        taps = K.expand_dims(kernel, axis + 1)
        gaps = [K.expand_dims(kernel * 0.0, axis + 1)] * (rate - 1)
        spread = K.concatenate([taps, *gaps], axis=axis + 1)  # tap, then rate - 1 zeros
        shape[axis] *= rate
        spread = K.reshape(spread, tuple(shape))
        size = [-1] * len(shape)
        size[axis] = (shape[axis] // rate - 1) * rate + 1  # drop the zeros after the last tap
        kernel = K.slice(spread, (0,) * len(shape), tuple(size))
    return kernel


def side_pairs(layer: Layer, argument: str, value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` from an int, ``(rows, cols)`` or the pairs themselves.

    Raises ``layer.invalid_argument`` for anything else (ZeroPadding2D, Cropping2D).
    """
    expected = "an int, (rows, cols) or ((top, bottom), (left, right)) of ints >= 0"

    def is_count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if is_count(value):
        return ((value, value), (value, value))
    if isinstance(value, list | tuple) and len(value) == 2:
        if all(is_count(p) for p in value):
            return ((value[0], value[0]), (value[1], value[1]))
        if all(
            isinstance(p, list | tuple) and len(p) == 2 and all(is_count(v) for v in p)
            for p in value
        ):
            return (tuple(value[0]), tuple(value[1]))  # type: ignore[return-value]
    raise layer.invalid_argument(argument, expected, value)


@legacy.keras1_arguments(legacy.DIM_ORDERING_RENAMES)
@channels_first_capable
class ZeroPadding2D(Layer):
    """Add rows and columns of zeros around each image.

    Args:
        padding: an int (all sides), ``(rows, cols)`` (symmetric), or
            ``((top, bottom), (left, right))``.
    """

    def __init__(
        self,
        padding: int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]] = (1, 1),
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_data_format(self, data_format, channels_first=True)
        self.padding = side_pairs(self, "padding", padding)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return K.spatial_2d_padding(inputs, self.padding)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
        (top, bottom), (left, right) = self.padding
        rows, cols = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if rows is None else rows + top + bottom,
            None if cols is None else cols + left + right,
            input_shape[3],
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


_POOLING_NAMES = ("AveragePooling2D", "MaxPooling2D", "AvgPool2D", "MaxPool2D")


def __getattr__(name: str) -> Any:
    if name in _POOLING_NAMES:  # Keras 2 kept pooling layers importable from here
        from minidl.layers import pooling

        return getattr(pooling, name)
    raise AttributeError(f"module 'minidl.layers.convolutional' has no attribute {name!r}")
