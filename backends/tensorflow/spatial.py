"""Static slicing and transposed convolution on TensorFlow tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minidl.backends import shapes

from ._runtime import tf
from .variables import to_tensor


def slice(x: Any, start: Sequence[int], size: Sequence[int]) -> Any:  # noqa: A001
    """Return the static block ``x[start[0] : start[0] + size[0], ...]`` (``tf.slice``)."""
    x = to_tensor(x)
    start, size, _ = shapes.normalize_slice("slice", tuple(x.shape.as_list()), start, size)
    return tf.slice(x, start, size)


def conv2d_transpose(
    x: Any,
    kernel: Any,
    output_shape: tuple,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
) -> Any:
    """Transposed 2-D convolution (``tf.nn.conv2d_transpose``, Keras 2's kernel layout)."""
    x = to_tensor(x)
    kernel = to_tensor(kernel, x.dtype)
    if x.shape.rank != 4 or kernel.shape.rank != 4:
        raise ValueError(
            "`conv2d_transpose` expects a 4-D NHWC input and a (kh, kw, out_channels, "
            f"in_channels) kernel. Received: input shape {x.shape}, kernel shape {kernel.shape}"
        )
    out_c = kernel.shape[2]
    strides, padding, (out_h, out_w) = shapes.check_conv2d_transpose(
        tuple(x.shape.as_list()), tuple(kernel.shape.as_list()), output_shape, strides, padding
    )
    batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    target = tf.stack([batch, out_h, out_w, out_c])
    out = tf.nn.conv2d_transpose(
        x, kernel, target, strides=(1, *strides, 1), padding=padding.upper()
    )
    return tf.ensure_shape(out, (x.shape[0], out_h, out_w, out_c))
