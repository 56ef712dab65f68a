"""Shape arithmetic shared by layers and backends (pure Python, no arrays)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PADDINGS = ("valid", "same")


def normalize_tuple(value: int | tuple[int, ...], n: int, name: str) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ``n`` positive ints (an int is repeated ``n`` times).

    >>> normalize_tuple(3, 2, "kernel_size")
    (3, 3)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        values: tuple[int, ...] = (value,) * n
    else:
        try:
            values = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(
                f"`{name}` must be an int or a tuple of {n} ints. Received: {name}={value!r}"
            ) from None
    if len(values) != n or any(v < 1 for v in values):
        raise ValueError(
            f"`{name}` must be an int or a tuple of {n} positive ints. Received: {name}={value!r}"
        )
    return values


def normalize_padding(padding: str) -> str:
    """Return ``padding`` lower-cased after checking it is ``"valid"`` or ``"same"``."""
    value = str(padding).lower()
    if value not in PADDINGS:
        raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    return value


def conv_output_length(size: int | None, kernel: int, stride: int, padding: str) -> int | None:
    """Length of one spatial axis after a convolution or pooling window.

    >>> conv_output_length(256, 7, 1, "valid"), conv_output_length(250, 5, 5, "valid")
    (250, 50)
    >>> conv_output_length(7, 3, 2, "same")
    4
    """
    if size is None:
        return None
    if padding == "same":
        return math.ceil(size / stride)
    if padding == "valid":
        return max((size - kernel) // stride + 1, 0)
    raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Cells added (before, after) one axis for ``"same"`` padding, TensorFlow's split.

    >>> same_padding(7, 3, 2)
    (1, 1)
    >>> same_padding(8, 3, 2)
    (0, 1)
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def padding_amounts(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) padding of one axis for ``padding`` in {"valid", "same"}."""
    return same_padding(size, kernel, stride) if padding == "same" else (0, 0)


def spatial_padding(
    height: int, width: int, window: tuple, strides: tuple, padding: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` padding of an image of ``height`` x ``width``.

    >>> spatial_padding(5, 4, (3, 3), (2, 2), "same")
    ((1, 1), (0, 1))
    """
    return (
        padding_amounts(height, window[0], strides[0], padding),
        padding_amounts(width, window[1], strides[1], padding),
    )


def deconv_output_length(
    size: int | None, kernel: int, stride: int, padding: str, output_padding: int | None = None
) -> int | None:
    """Length of one axis after a transposed convolution (Keras 2's rule).

    Without ``output_padding``: ``size * stride`` for ``"same"``, ``size * stride +
    max(kernel - stride, 0)`` for ``"valid"``. With it: ``(size - 1) * stride + kernel -
    2 * pad + output_padding`` where ``pad`` is ``kernel // 2`` for ``"same"``, else 0.

    >>> deconv_output_length(4, 3, 2, "same"), deconv_output_length(4, 3, 2, "valid")
    (8, 9)
    >>> deconv_output_length(4, 3, 2, "same", output_padding=1)
    8
    """
    if size is None:
        return None
    if output_padding is None:
        if padding == "same":
            return size * stride
        return size * stride + max(kernel - stride, 0)
    pad = kernel // 2 if padding == "same" else 0
    return (size - 1) * stride + kernel - 2 * pad + output_padding


def check_transpose_output(
    op: str, input_hw: tuple, output_hw: tuple, kernel_hw: tuple, strides: tuple, padding: str
) -> None:
    """Raise ``ValueError`` unless a conv over ``output_hw`` gives ``input_hw`` (None passes)."""
    for size, out, k, s in zip(input_hw, output_hw, kernel_hw, strides):
        if size is None or out is None:
            continue
        if out < 1 or conv_output_length(out, k, s, padding) != size:
            raise ValueError(
                f"`{op}` cannot produce an output of height/width {tuple(output_hw)} from an "
                f"input of {tuple(input_hw)} with kernel {tuple(kernel_hw)}, strides "
                f"{tuple(strides)} and padding={padding!r}: a convolution of the output must "
                f"give back the input's size. Received: output_shape with {tuple(output_hw)}"
            )


def check_conv2d_transpose(
    input_shape: tuple, kernel_shape: tuple, output_shape: tuple, strides: Any, padding: str
) -> tuple[tuple[int, int], str, tuple[int, int]]:
    """Check ``conv2d_transpose``'s arguments against each other (None: unknown size).

    ``kernel_shape`` is ``(kh, kw, out_channels, in_channels)``. Returns ``strides`` and
    ``padding`` normalized and the output's ``(height, width)``.
    """
    if len(kernel_shape) != 4 or (input_shape[3] is not None and kernel_shape[3] != input_shape[3]):
        raise ValueError(
            "`conv2d_transpose` expects a kernel of shape (kh, kw, out_channels, in_channels) "
            f"matching the input's {input_shape[3]} channels. Received: kernel.shape="
            f"{tuple(kernel_shape)}"
        )
    strides = normalize_tuple(strides, 2, "strides")
    padding = normalize_padding(padding)
    out_h, out_w, out_c = (int(d) for d in tuple(output_shape)[1:])
    if out_c != kernel_shape[2]:
        raise ValueError(
            f"`conv2d_transpose` output channels must match the kernel's {kernel_shape[2]}. "
            f"Received: output_shape={tuple(output_shape)}"
        )
    check_transpose_output(
        "conv2d_transpose", input_shape[1:3], (out_h, out_w), kernel_shape[:2], strides, padding
    )
    return strides, padding, (out_h, out_w)


def broadcast_shapes(*shapes: tuple) -> tuple:
    """Static NumPy broadcasting where ``None`` is a size known only at run time.

    >>> broadcast_shapes((None, 1, 3), (4, 1), (3,))
    (None, 4, 3)

    Raises:
        ValueError: when two known sizes cannot broadcast.
    """
    rank = max(len(s) for s in shapes)
    result = []
    for axis in range(rank):
        sizes = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = {d for d in sizes if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(
                f"Operands could not be broadcast together. Received: shapes {list(shapes)}"
            )
        if known:
            result.append(known.pop())
        elif any(d is None for d in sizes):
            result.append(None)
        else:
            result.append(1)
    return tuple(result)


def normalize_slice(
    op: str, shape: tuple, start: Sequence[int], size: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple]:
    """Check ``start``/``size`` of a ``slice`` against static ``shape`` (None: unknown size).

    Returns ``start`` and ``size`` as int tuples and the static shape of the block.
    """
    start, size = tuple(int(s) for s in start), tuple(int(s) for s in size)
    if len(start) != len(shape) or len(size) != len(shape):
        raise ValueError(
            f"`{op}` needs one start and one size per axis of a rank-{len(shape)} tensor. "
            f"Received: start={start}, size={size}"
        )
    result = []
    for axis, (dim, begin, length) in enumerate(zip(shape, start, size)):
        end = begin if length == -1 else begin + length
        if begin < 0 or length < -1 or (dim is not None and end > dim):
            raise ValueError(
                f"`{op}` block leaves the tensor on axis {axis} (size {dim}). "
                f"Received: start={start}, size={size}"
            )
        if length == -1:
            result.append(None if dim is None else dim - begin)
        else:
            result.append(length)
    return start, size, tuple(result)
