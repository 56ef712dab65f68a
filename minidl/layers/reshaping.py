"""Layers that resize channels-last images: UpSampling2D (nearest, bilinear) and Cropping2D.

Both are written with ``K.concatenate``, ``K.reshape`` and ``K.slice`` only, so their gradients
come from those ops on every backend. They need a static height and width (``K.int_shape``).
"""

from __future__ import annotations

from typing import Any

from minidl import backend as K
from minidl.layers.base import Layer
from minidl.layers.convolutional import IMAGE_LAYOUT, ShapeTuple, check_data_format, side_pairs
from minidl.layers.data_format import channels_first_capable

INTERPOLATIONS = ("nearest", "bilinear")


def _static_image_shape(layer: Layer, x: Any) -> tuple[int, int, int]:
    """Height, width and channels of NHWC ``x``; they must be known while tracing."""
    shape = tuple(K.int_shape(x))
    if len(shape) != 4 or None in shape[1:]:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) needs a 4-D input {IMAGE_LAYOUT} "
            f"with a known height, width and channel count. Received: input shape {shape}"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def repeat_along(x: Any, axis: int, factor: int, size: int) -> Any:
    """Repeat every cell of spatial ``axis`` (1 or 2, of static ``size``) ``factor`` times."""
    if factor == 1:
        return x
    shape = list(K.int_shape(x))
    stacked = K.concatenate([K.expand_dims(x, axis + 1)] * factor, axis=axis + 1)
    shape[axis] = size * factor
    return K.reshape(stacked, (-1, *shape[1:]))


def _shifted(x: Any, axis: int, size: int, step: int) -> Any:
    """``x`` moved one cell along ``axis`` (``step`` -1: from the previous cell, +1: from the
    next one), repeating the edge cell (a clamped index)."""
    if size == 1:
        return x
    start, length = [0, 0, 0, 0], [-1, -1, -1, -1]
    edge_start, edge_length = [0, 0, 0, 0], [-1, -1, -1, -1]
    length[axis] = size - 1
    edge_length[axis] = 1
    if step < 0:  # out[i] = x[i - 1], out[0] = x[0]
        edge = K.slice(x, tuple(edge_start), tuple(edge_length))
        return K.concatenate([edge, K.slice(x, tuple(start), tuple(length))], axis=axis)
    start[axis] = 1  # out[i] = x[i + 1], out[-1] = x[-1]
    edge_start[axis] = size - 1
    rest = K.slice(x, tuple(start), tuple(length))
    return K.concatenate([rest, K.slice(x, tuple(edge_start), tuple(edge_length))], axis=axis)


def bilinear_along(x: Any, axis: int, factor: int, size: int) -> Any:
    """Linear interpolation by ``factor`` along ``axis`` with half-pixel centres.

    Output cell ``o = factor * i + p`` samples input position ``i + d_p`` with
    ``d_p = (2 p + 1 - factor) / (2 factor)``, between cell ``i`` and its neighbour (the edge
    cell repeats past the border), as TensorFlow 2's and Keras 3's bilinear resize do.
    """
    if factor == 1:
        return x
    previous, following = _shifted(x, axis, size, -1), _shifted(x, axis, size, +1)
    phases = []
    for p in range(factor):
        d = (2 * p + 1 - factor) / (2 * factor)
        if d < 0:
            phase = previous * (-d) + x * (1.0 + d)
        elif d > 0:
            phase = x * (1.0 - d) + following * d
        else:
            phase = x
        phases.append(K.expand_dims(phase, axis + 1))
    shape = list(K.int_shape(x))
    shape[axis] = size * factor
    return K.reshape(K.concatenate(phases, axis=axis + 1), (-1, *shape[1:]))


@channels_first_capable
class UpSampling2D(Layer):
    """Enlarge images by integer factors: repeat pixels, or interpolate bilinearly.

    Args:
        size: an int or ``(rows, cols)`` factor.
        interpolation: ``"nearest"`` (repeat each pixel) or ``"bilinear"`` (half-pixel
            centres, the edge pixel repeated past the border: TensorFlow 2's and Keras 3's
            resize, which Keras 2 on TensorFlow 2 uses too).
    """

    def __init__(
        self,
        size: int | tuple[int, int] = (2, 2),
        data_format: str | None = None,
        interpolation: str = "nearest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_data_format(self, data_format, channels_first=True)
        self.size = self.int_tuple("size", size, 2)
        if interpolation not in INTERPOLATIONS:
            raise self.invalid_argument(
                "interpolation", "one of 'nearest', 'bilinear'", interpolation
            )
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
        rows, cols = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if rows is None else rows * self.size[0],
            None if cols is None else cols * self.size[1],
            input_shape[3],
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        height, width, _ = _static_image_shape(self, inputs)
        resize = repeat_along if self.interpolation == "nearest" else bilinear_along
        rows = resize(inputs, 1, self.size[0], height)
        return resize(rows, 2, self.size[1], width)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": list(self.size),
            "interpolation": self.interpolation,
        }


@channels_first_capable
class Cropping2D(Layer):
    """Remove rows and columns at the borders of each image.

    Args:
        cropping: an int (all sides), ``(rows, cols)`` (symmetric), or
            ``((top, bottom), (left, right))``.
    """

    def __init__(
        self,
        cropping: int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]] = (
            (0, 0),
            (0, 0),
        ),
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_data_format(self, data_format, channels_first=True)
        self.cropping = side_pairs(self, "cropping", cropping)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
        (top, bottom), (left, right) = self.cropping
        sizes = []
        for size, cut in ((input_shape[1], top + bottom), (input_shape[2], left + right)):
            if size is not None and size - cut < 1:
                raise ValueError(
                    f"Layer '{self.name}' (Cropping2D) crops {self.cropping} from an image "
                    f"too small to keep any pixel. Received: input_shape={tuple(input_shape)}"
                )
            sizes.append(None if size is None else size - cut)
        return (input_shape[0], sizes[0], sizes[1], input_shape[3])

    def call(self, inputs: Any, training: bool = False) -> Any:
        height, width, channels = _static_image_shape(self, inputs)
        (top, bottom), (left, right) = self.cropping
        _, rows, cols, _ = self.compute_output_shape((None, height, width, channels))
        return K.slice(inputs, (0, top, left, 0), (-1, rows, cols, -1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}
