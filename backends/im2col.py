"""Convolution and pooling on NHWC arrays through strided window views and matrix products.

``window_view`` exposes every ``(kh, kw)`` window of an image batch as a read-only strided
view without copying. A convolution copies the windows of one *block* (a few samples, or a
band of output rows of one sample) into a column matrix (im2col) with a single strided copy
and does one matrix product per block. Blocks keep the column buffer under
``IM2COL_BUDGET_BYTES``, small enough to stay in the CPU cache, so a step's memory stays
bounded whatever the batch size. The columns are laid out pixel-major (one row per output
pixel) when a window row holds many contiguous values, and channel-major (one row per kernel
tap, long contiguous runs of pixels) when there are few input channels, as in a first
convolution layer on grey images; a shape-based rule picks the faster copy.

The input gradient of a convolution scatters each block's window gradients back (col2im)
with a loop over the ``kh * kw`` kernel positions, never over pixels. Pooling reduces rows
first (long contiguous runs) and then columns, one elementwise maximum per window offset.
The functions work on NumPy arrays and on arrays of any module exposing the same API (CuPy),
chosen from the array's type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

# keep one column buffer under this many bytes (bigger convolutions go in blocks of samples
# or of output rows); 1 MiB fits a core's L2 cache and measured fastest on ConvLarge
IM2COL_BUDGET_BYTES = 2**20

# channel-major columns when a window row (kw * channels values) is shorter than this
PIXEL_MAJOR_MIN_RUN = 16


def array_module(array: Any) -> Any:
    """The array module (``numpy`` or ``cupy``) that owns ``array``."""
    if type(array).__module__.split(".")[0] == "cupy":  # pragma: no cover
        import cupy

        return cupy
    return np


def window_view(x: Any, window: tuple[int, int], strides: tuple[int, int]) -> Any:
    """Read-only view ``(n, out_h, out_w, kh, kw, c)`` of all windows of NHWC ``x``.

    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> window_view(x, (2, 2), (2, 2))[0, 1, 0, :, :, 0]
    array([[ 8.,  9.],
           [12., 13.]])
    """
    xp = array_module(x)
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = window, strides
    out_h, out_w = conv_output_size(h, kh, sh), conv_output_size(w, kw, sw)
    bn, bh, bw, bc = x.strides
    return xp.lib.stride_tricks.as_strided(
        x,
        shape=(n, out_h, out_w, kh, kw, c),
        strides=(bn, bh * sh, bw * sw, bh, bw, bc),
        writeable=False,
    )


def conv_output_size(size: int, k: int, s: int) -> int:
    """Valid-convolution output length of an already padded axis."""
    return max((size - k) // s + 1, 0)


def column_blocks(batch: int, out_h: int, row_bytes: int) -> Iterator[tuple[slice, slice]]:
    """Yield ``(samples, output_rows)`` blocks whose columns fit ``IM2COL_BUDGET_BYTES``.

    Whole samples are grouped while one sample's columns fit the budget; larger samples are
    cut into bands of output rows, one sample at a time (so a block of the NHWC output is
    always contiguous).
    """
    if batch == 0 or out_h == 0 or row_bytes == 0:
        return
    budget = IM2COL_BUDGET_BYTES
    sample_bytes = row_bytes * out_h
    if sample_bytes <= budget:
        step = max(1, budget // sample_bytes)
        for start in range(0, batch, step):
            yield slice(start, min(batch, start + step)), slice(0, out_h)
        return
    rows = max(1, budget // row_bytes)
    for sample in range(batch):
        for top in range(0, out_h, rows):
            yield slice(sample, sample + 1), slice(top, min(out_h, top + rows))


def pixel_major(window: tuple[int, int], channels: int) -> bool:
    """Whether columns should hold one output pixel per row (see the module docstring)."""
    return window[1] * channels >= PIXEL_MAJOR_MIN_RUN


def input_rows(rows: slice, kh: int, sh: int) -> slice:
    """The padded input rows that the output rows ``rows`` read."""
    return slice(rows.start * sh, (rows.stop - 1) * sh + kh)


class ColumnBuffer:
    """A reusable im2col buffer: ``fill`` copies the windows of a block into it."""

    def __init__(self, window: tuple[int, int], strides: tuple[int, int], channels: int) -> None:
        self.window, self.strides, self.channels = window, strides, channels
        self.pixel_major = pixel_major(window, channels)
        self.storage: Any = None

    def fill(self, x: Any, rows: slice) -> Any:
        """The ``(pixels, kh * kw * c)`` column matrix of output ``rows`` of NHWC ``x``.

        Channel-major columns come back as a transposed (Fortran-ordered) view, which matrix
        products take without copying.
        """
        (kh, kw), (sh, _) = self.window, self.strides
        view = window_view(x[:, input_rows(rows, kh, sh)], self.window, self.strides)
        n, out_h, out_w, _, _, c = view.shape
        size, taps = n * out_h * out_w, kh * kw * c
        if self.storage is None or self.storage.size < size * taps:
            self.storage = array_module(x).empty(size * taps, dtype=x.dtype)
        flat = self.storage[: size * taps]
        if self.pixel_major:
            flat.reshape(view.shape)[...] = view
            return flat.reshape(size, taps)
        flat.reshape(kh, kw, c, n, out_h, out_w)[...] = view.transpose(3, 4, 5, 0, 1, 2)
        return flat.reshape(taps, size).T


def conv2d_forward(x: Any, kernel: Any, strides: tuple[int, int]) -> Any:
    """Valid cross-correlation of padded NHWC ``x`` with HWIO ``kernel`` (in blocks)."""
    xp = array_module(x)
    n, h, w, c = x.shape
    kh, kw, _, out_c = kernel.shape
    out_h, out_w = conv_output_size(h, kh, strides[0]), conv_output_size(w, kw, strides[1])
    flat_kernel = xp.ascontiguousarray(kernel.reshape(kh * kw * c, out_c))
    out = xp.empty((n, out_h, out_w, out_c), dtype=np.result_type(x.dtype, kernel.dtype))
    columns = ColumnBuffer((kh, kw), strides, c)
    for samples, rows in column_blocks(n, out_h, out_w * kh * kw * c * x.itemsize):
        target = out[samples, rows].reshape(-1, out_c)  # a contiguous block: a view
        xp.dot(columns.fill(x[samples], rows), flat_kernel, out=target)
    return out


def conv2d_kernel_gradient(x: Any, grad: Any, kernel_shape: tuple, strides: tuple) -> Any:
    """d(loss)/d(kernel) from padded input ``x`` and output gradient ``grad`` (in blocks)."""
    xp = array_module(x)
    n = x.shape[0]
    kh, kw, c, out_c = kernel_shape
    out_h, out_w = grad.shape[1:3]
    result = xp.zeros((kh * kw * c, out_c), dtype=grad.dtype)
    columns = ColumnBuffer((kh, kw), strides, c)
    for samples, rows in column_blocks(n, out_h, out_w * kh * kw * c * x.itemsize):
        g = grad[samples, rows].reshape(-1, out_c)
        result += xp.dot(columns.fill(x[samples], rows).T, g)
    return result.reshape(kernel_shape)


def conv2d_input_gradient(
    grad: Any, kernel: Any, padded_shape: tuple, strides: tuple[int, int]
) -> Any:
    """d(loss)/d(padded input) from the output gradient and the kernel (in blocks).

    Each block's window gradients come out of one matrix product and are added back with a
    loop over the ``kh * kw`` kernel positions (col2im).
    """
    xp = array_module(grad)
    n, out_h, out_w, out_c = grad.shape
    kh, kw, c, _ = kernel.shape
    sh, sw = strides
    flat_kernel = kernel.reshape(kh * kw * c, out_c)
    image = xp.zeros(padded_shape, dtype=grad.dtype)
    major = pixel_major((kh, kw), c)
    for samples, rows in column_blocks(n, out_h, out_w * kh * kw * c * grad.itemsize):
        g = grad[samples, rows].reshape(-1, out_c)
        height = rows.stop - rows.start
        target = image[samples, input_rows(rows, kh, sh)]
        if major:  # (pixels, taps) -> windows (n, rows, out_w, kh, kw, c)
            windows = xp.dot(g, flat_kernel.T).reshape(-1, height, out_w, kh, kw, c)
            windows = windows.transpose(3, 4, 0, 1, 2, 5)
        else:  # (taps, pixels) -> channel planes, added into a channels-first view of target
            windows = xp.dot(flat_kernel, g.T).reshape(kh, kw, c, -1, height, out_w)
            windows = windows.transpose(0, 1, 3, 4, 5, 2)
        for i in range(kh):
            band = slice(i, i + sh * (height - 1) + 1, sh)
            for j in range(kw):
                target[:, band, j : j + sw * (out_w - 1) + 1 : sw] += windows[i, j]
    return image


def _first_axis_max(x: Any, axis: int, window: int, stride: int, count: int) -> Any:
    """Elementwise maximum over the ``window`` offsets of ``count`` strided slices of ``axis``."""
    xp = array_module(x)

    def part(offset: int) -> Any:
        where = [slice(None)] * x.ndim
        where[axis] = slice(offset, offset + stride * (count - 1) + 1, stride)
        return x[tuple(where)]

    if window == 1:
        return part(0).copy()
    result = xp.maximum(part(0), part(1))
    for offset in range(2, window):
        xp.maximum(result, part(offset), out=result)
    return result


def max_pool_forward(x: Any, window: tuple[int, int], strides: tuple[int, int]) -> Any:
    """Max over every window of padded NHWC ``x``: rows first, then columns."""
    (kh, kw), (sh, sw) = window, strides
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh), conv_output_size(w, kw, sw)
    if out_h == 0 or out_w == 0:
        return array_module(x).empty((n, out_h, out_w, c), dtype=x.dtype)
    rows = _first_axis_max(x, 1, kh, sh, out_h)  # (n, out_h, w, c), contiguous runs
    return _first_axis_max(rows, 2, kw, sw, out_w)


def window_sums(x: Any, window: tuple[int, int], strides: tuple[int, int]) -> Any:
    """Sum over every window of padded NHWC ``x``."""
    return window_view(x, window, strides).sum(axis=(3, 4), dtype=x.dtype)


def _tile_max_gradient(x: Any, pooled: Any, grad: Any, window: tuple[int, int]) -> Any:
    """Gradient of non-overlapping max-pooling, or None when a window has tied maxima."""
    xp = array_module(x)
    kh, kw = window
    n, out_h, out_w, c = pooled.shape
    tiles = x[:, : out_h * kh, : out_w * kw].reshape(n, out_h, kh, out_w * kw, c)
    # the pooled maxima and gradients repeated along the width: (n, out_h, 1, out_w * kw, c)
    wide_max = xp.repeat(pooled, kw, axis=2)[:, :, None]
    winners = tiles == wide_max
    if int(xp.count_nonzero(winners)) != pooled.size:
        return None
    wide_grad = xp.repeat(grad, kw, axis=2)[:, :, None]
    routed = xp.multiply(winners, wide_grad, dtype=grad.dtype)
    routed = routed.reshape(n, out_h * kh, out_w * kw, c)
    if routed.shape == x.shape:
        return routed
    image = xp.zeros(x.shape, dtype=grad.dtype)
    image[:, : out_h * kh, : out_w * kw] = routed
    return image


def max_pool_gradient(
    x: Any, pooled: Any, grad: Any, window: tuple[int, int], strides: tuple[int, int]
) -> Any:
    """Route each output gradient to the first maximum of its window in padded ``x``.

    ``pooled`` is the forward result. Non-overlapping windows compare the input with the
    maxima repeated over each window (when no window has tied maxima); otherwise the first
    arg-max of every window is found and the gradient added back with a loop over window
    positions.
    """
    xp = array_module(x)
    (kh, kw), (sh, sw) = window, strides
    n, h, w, c = x.shape
    out_h, out_w = pooled.shape[1:3]
    if (kh, kw) == (sh, sw) and pooled.size:
        image = _tile_max_gradient(x, pooled, grad, window)
        if image is not None:
            return image
    windows = window_view(x, window, strides)
    flat = windows.transpose(0, 1, 2, 5, 3, 4).reshape(n, out_h, out_w, c, kh * kw)
    first_max = flat.argmax(axis=-1) if flat.size else xp.zeros(pooled.shape, dtype=np.intp)
    image = xp.zeros(x.shape, dtype=grad.dtype)
    for position in range(kh * kw):
        i, j = divmod(position, kw)
        routed = xp.where(first_max == position, grad, 0)
        image[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] += routed
    return image


def avg_pool_gradient(
    grad: Any, counts: Any, padded_shape: tuple, window: tuple[int, int], strides: tuple
) -> Any:
    """Spread each output gradient evenly over the ``counts`` real cells of its window."""
    xp = array_module(grad)
    (kh, kw), (sh, sw) = window, strides
    share = grad / counts
    n, out_h, out_w, c = grad.shape
    image = xp.zeros(padded_shape, dtype=grad.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (out_h - 1) + 1, sh)
        for j in range(kw):
            image[:, rows, j : j + sw * (out_w - 1) + 1 : sw] += share
    return image
