"""Convolutions with few filters as *banded* matrix products (NHWC, HWIO kernels).

im2col gives every output pixel a row of ``kh * kw * c`` taps and multiplies by the
``(kh * kw * c, filters)`` kernel. With few filters (a first layer on grey images: 49 taps,
6 filters) that product is too narrow for BLAS to run near its peak, and the columns are
``kh * kw`` times the image. Here one row of the column matrix holds a *band*: the ``kh``
input rows under ``B`` neighbouring output pixels of one output row, ``kh * L * c`` values
with ``L = (B - 1) * sw + kw``. The kernel becomes a banded matrix of shape
``(kh * L * c, B * filters)`` whose column block ``b`` holds the kernel shifted by
``b * sw`` input columns, so one product gives ``B`` pixels times ``filters`` outputs per
row, already in NHWC order.

That costs ``L / kw`` times im2col's arithmetic, for a product ``B`` times wider and columns
``L / (B * kw)`` of im2col's size. On ConvLarge's first layer (7x7, 1 -> 6, ``B = 10``) the
forward and the kernel gradient take about 1.0 ms instead of 1.2-1.3 ms on one core here.

``band_width`` decides (``1``: use im2col); the ``im2col`` module calls the functions here
from its block loops, so blocking, threads and scratch memory work the same way.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

# widen products to about this many outputs per row (B * filters); wider bands do more
# redundant arithmetic than BLAS gains back (measured on 7x7 kernels, 6 and 16 filters)
TARGET_ROW_OUTPUTS = 48

# never do more than this multiple of im2col's arithmetic
MAX_EXTRA_WORK = 2.5

# filters from which im2col's product is already wide enough
MIN_FILTERS_FOR_IM2COL = 32


@cache  # called per convolution call, on a handful of shapes
def band_width(out_w: int, kw: int, sw: int, filters: int) -> int:
    """Output pixels per band (``B``), a divisor of ``out_w``; ``1`` means use im2col.

    >>> band_width(250, 7, 1, 6), band_width(44, 7, 1, 16), band_width(56, 3, 1, 64)
    (10, 4, 1)
    """
    if filters >= MIN_FILTERS_FOR_IM2COL or out_w < 2:
        return 1
    target = -(-TARGET_ROW_OUTPUTS // filters)
    best = 1
    for b in range(2, out_w + 1):
        extra_work = ((b - 1) * sw + kw) / kw
        if out_w % b or extra_work > MAX_EXTRA_WORK:
            continue
        if best == 1 or abs(b - target) <= abs(best - target):  # ties: the wider band
            best = b
    return best


def band_length(band: int, kw: int, sw: int) -> int:
    """Input columns one band of ``band`` output pixels reads (``L``)."""
    return (band - 1) * sw + kw


def banded_kernel(kernel: Any, band: int, sw: int, xp: Any = np) -> Any:
    """The ``(kh * L * c, band * filters)`` matrix that maps one band to its outputs.

    >>> k = np.array([1.0, 2.0]).reshape(1, 2, 1, 1)
    >>> banded_kernel(k, 2, 1)
    array([[1., 0.],
           [2., 1.],
           [0., 2.]])
    """
    kh, kw, c, filters = kernel.shape
    length = band_length(band, kw, sw)
    matrix = xp.zeros((kh, length, c, band, filters), dtype=kernel.dtype)
    for b in range(band):
        matrix[:, b * sw : b * sw + kw, :, b, :] = kernel
    return matrix.reshape(kh * length * c, band * filters)


def fold_kernel_gradient(matrix: Any, band: int, kernel_shape: tuple, sw: int) -> Any:
    """Add a banded matrix's gradient back into the ``(kh, kw, c, filters)`` kernel."""
    kh, kw, c, filters = kernel_shape
    length = band_length(band, kw, sw)
    blocks = matrix.reshape(kh, length, c, band, filters)
    total = blocks[:, 0:kw, :, 0, :].copy()
    for b in range(1, band):
        total += blocks[:, b * sw : b * sw + kw, :, b, :]
    return total


def band_view(x: Any, rows: slice, band: int, window: tuple, strides: tuple, xp: Any = np) -> Any:
    """Read-only view ``(n, rows, out_w // band, kh, L, c)`` of the bands of NHWC ``x``.

    ``x`` is already padded; ``rows`` are the output rows wanted.
    """
    (kh, kw), (sh, sw) = window, strides
    n, _, w, c = x.shape
    out_w = (w - kw) // sw + 1
    bn, bh, bw, bc = x.strides
    start = x[:, rows.start * sh :]
    shape = (n, rows.stop - rows.start, out_w // band, kh, band_length(band, kw, sw), c)
    return xp.lib.stride_tricks.as_strided(
        start, shape=shape, strides=(bn, bh * sh, bw * sw * band, bh, bw, bc), writeable=False
    )


def add_band_gradients(
    image: Any, windows: Any, top: int, band: int, window: tuple, strides: tuple, xp: Any = np
) -> None:
    """Add band gradients ``(n, rows, bands, kh, L, c)`` into NHWC ``image`` (col2im).

    ``top`` is the input row where the first output row's windows start. Bands next to each
    other overlap when ``L`` exceeds their stride, so they are added in ``phases`` rounds of
    bands that do not: ``kh * phases`` strided additions in all.
    """
    (kh, _), (sh, sw) = window, strides
    n, height, bands, _, length, c = windows.shape
    step = band * sw
    phases = -(-length // step)
    bn, bh, bw, bc = image.strides
    for i in range(kh):
        for phase in range(phases):
            count = len(range(phase, bands, phases))
            if count == 0:
                continue
            target = xp.lib.stride_tricks.as_strided(
                image[:, top + i :, phase * step :],
                shape=(n, height, count, length, c),
                strides=(bn, bh * sh, bw * step * phases, bw, bc),
            )
            target += windows[:, :, phase::phases, i]
