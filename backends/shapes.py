"""Shape arithmetic shared by layers and backends (pure Python, no arrays)."""

from __future__ import annotations

import math

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
