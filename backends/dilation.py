"""Dilated (atrous) convolution rewritten as an ordinary one, for backends without a native op.

With stride 1, output row ``i = a * d + r`` of a convolution whose taps are ``d`` rows apart
reads rows ``a * d + r + k * d`` of the padded input: the rows of phase ``r`` only. Splitting
the padded image into its ``dh * dw`` phases (a reshape and a transpose that move them into
the batch), running one undilated ``conv2d`` over all of them and interleaving the results
back gives the dilated convolution, with the gradients of the ops it is made of.
"""

from __future__ import annotations

import math
from typing import Any

from .shapes import normalize_tuple, padding_amounts


def check_dilation(dilation_rate: Any, strides: tuple[int, int]) -> tuple[int, int]:
    """Return ``dilation_rate`` as two ints; a rate above 1 needs unit strides."""
    rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
    if rate != (1, 1) and tuple(strides) != (1, 1):
        raise ValueError(
            "`conv2d` supports a dilation_rate above 1 only with strides (1, 1) (as Keras 2 "
            f"and TensorFlow). Received: strides={tuple(strides)}, dilation_rate={rate}"
        )
    return rate  # type: ignore[return-value]


def dilated_conv2d(
    ops: Any,
    x: Any,
    kernel: Any,
    image_shape: tuple,
    kernel_shape: tuple,
    padding: str,
    dilation_rate: tuple[int, int],
) -> Any:
    """``conv2d`` of NHWC ``x`` with taps ``dilation_rate`` apart, built from ``ops``.

    Args:
        ops: the backend module (``spatial_2d_padding``, ``reshape``, ``transpose``,
            ``conv2d`` and ``slice`` are used).
        x: the input tensor.
        kernel: the HWIO kernel tensor.
        image_shape: ``x``'s static ``(batch, height, width, channels)`` (batch may be None).
        kernel_shape: the kernel's static shape ``(kh, kw, in, out)``.
        padding: ``"valid"`` or ``"same"``.
        dilation_rate: ``(dh, dw)``.
    """
    _, height, width, _ = image_shape
    if height is None or width is None:
        raise ValueError(
            "`conv2d` with a dilation_rate above 1 needs a static height and width. "
            f"Received: input shape {tuple(image_shape)}"
        )
    kh, kw, channels, filters = kernel_shape
    (dh, dw), out, pads, phases = dilation_rate, [], [], []
    for size, k, d in ((height, kh, dh), (width, kw, dw)):
        effective = (k - 1) * d + 1
        before, after = padding_amounts(size, effective, 1, padding)
        padded = size + before + after
        if padded < effective:
            raise ValueError(
                f"`conv2d` input of size {size} is smaller than the dilated kernel "
                f"({effective}) with padding='valid'. Received: input shape {tuple(image_shape)}"
            )
        rounded = math.ceil(padded / d) * d
        out.append(padded - effective + 1)
        pads.append((before, after + rounded - padded))
        phases.append(rounded // d)
    (ph, pw), (oh, ow) = phases, out
    x = ops.spatial_2d_padding(x, tuple(pads))
    x = ops.reshape(x, (-1, ph, dh, pw, dw, channels))
    x = ops.transpose(x, (2, 4, 0, 1, 3, 5))
    x = ops.reshape(x, (-1, ph, pw, channels))
    y = ops.conv2d(x, kernel, (1, 1), "valid")
    rows, cols = ph - kh + 1, pw - kw + 1
    y = ops.reshape(y, (dh, dw, -1, rows, cols, filters))
    y = ops.transpose(y, (2, 3, 0, 4, 1, 5))
    y = ops.reshape(y, (-1, rows * dh, cols * dw, filters))
    if (rows * dh, cols * dw) != (oh, ow):
        y = ops.slice(y, (0, 0, 0, 0), (-1, oh, ow, filters))
    return y
