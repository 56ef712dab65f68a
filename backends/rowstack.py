"""Stride-1 convolutions by stacked input rows: im2col's matrix products with a third of its copy.

Stack the ``kh`` input rows under each output row channel-wise,
``S[p, q] = (x[p, q], x[p + 1, q], ..., x[p + kh - 1, q])`` (``kh * c`` values per pixel).
The window of output pixel ``(p, q)`` is then ``kw`` consecutive pixels of ``S``: one run of
``kw * kh * c`` values. Windows one pixel apart overlap, which a matrix product cannot read,
but windows ``kw`` pixels apart do not: for each ``r < kw`` the output pixels ``q = kw t + r``
read a plain ``(T, kw * kh * c)`` matrix view of ``S``. So ``kw`` products with the kernel
(taps ordered column, row, channel) give every output, and the copy is ``kh`` times the input
where im2col's is ``kh * kw`` times. The rows of a block lie on a grid whose width is a
multiple of ``kw``; its last columns hold outputs that do not exist, which are dropped.

The input gradient is the forward of the output gradient padded to a full correlation, with the
kernel rotated by 180 degrees and its channels swapped. Blocks of output rows and the threads
are ``im2col``'s. The kernel gradient stays with im2col: as the same ``kw`` products transposed
(the output gradient on the grid) it measured no faster (``python -m benchmarks.conv_layers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import im2col
from .im2col import Scratch, array_module, result_array

# the stacked rows of one block stay under this many bytes, with at least this many pixels
BLOCK_BUDGET_BYTES = 2**20
MIN_BLOCK_PIXELS = 1024

# work arrays (per thread): they never leave a call
_SCRATCH = Scratch()


def grid_width(padded_width: int, kw: int) -> int:
    """Pixels per grid row: the padded input's width rounded up to a multiple of ``kw``."""
    return -(-padded_width // kw) * kw


class _Geometry:
    """Sizes of one stride-1 convolution of NHWC ``x`` padded by ``pads`` with a
    ``(kh, kw, c, k)`` kernel."""

    def __init__(self, shape: tuple, pads: tuple, kernel_shape: tuple, itemsize: int) -> None:
        self.n, self.h, self.w, self.c = shape
        (self.top, bottom), (self.left, right) = pads
        self.kh, self.kw, _, self.k = kernel_shape
        self.itemsize = itemsize
        width = self.left + self.w + right  # of the padded input
        self.out_h = max(self.top + self.h + bottom - self.kh + 1, 0)
        self.out_w = max(width - self.kw + 1, 0)
        self.grid = grid_width(width, self.kw)
        self.taps = self.kw * self.kh * self.c  # one window: a row of the products' matrix
        self.row_bytes = self.grid * self.kh * self.c * itemsize  # stacked values per row
        self.min_rows = -(-MIN_BLOCK_PIXELS // self.grid)

    def blocks(self, parts: int) -> list[tuple[slice, slice]]:
        """``(samples, output rows)`` blocks, at least ``parts`` of them where there are rows."""
        budget = max(BLOCK_BUDGET_BYTES, self.min_rows * self.row_bytes)
        return list(im2col.column_blocks(self.n, self.out_h, self.row_bytes, 0, budget, parts))

    def work(self) -> int:
        """Bytes touched plus multiply-adds (``im2col.conv_work``), to decide on threads."""
        pixels = self.n * self.out_h * self.grid
        copied = pixels * self.kh * self.c * self.itemsize
        return copied + pixels * self.taps * self.k // im2col.MACS_PER_BYTE


def _stacked(x: Any, geo: _Geometry, samples: slice, rows: slice) -> tuple[Any, int]:
    """The block's stacked rows as one flat array (zeros for the padding and past it, ``kw``
    spare pixels at the end), and ``T``, the rows of each of the ``kw`` window matrices."""
    xp = array_module(x)
    size, height = samples.stop - samples.start, rows.stop - rows.start
    pixels = size * height * geo.grid
    stacked = _SCRATCH.array("stacked", (pixels + geo.kw, geo.kh * geo.c), x.dtype, xp)
    grid = stacked[:pixels].reshape(size, height, geo.grid, geo.kh, geo.c)
    left, right = geo.left, geo.left + geo.w
    grid[:, :, :left] = 0
    grid[:, :, right:] = 0
    for i in range(geo.kh):
        first = rows.start + i - geo.top  # the input row under the block's first output row
        a, b = min(max(first, 0), geo.h), min(max(first + height, 0), geo.h)
        inside = grid[:, :, left:right, i]
        inside[:, : a - first] = 0
        inside[:, b - first :] = 0
        if b > a:
            inside[:, a - first : b - first] = x[samples, a:b]
    stacked[pixels:] = 0
    return stacked.reshape(-1), pixels // geo.kw


def _windows(flat: Any, geo: _Geometry, r: int, count: int) -> Any:
    """The ``(count, taps)`` matrix of the windows of grid pixels ``kw t + r``."""
    start = r * geo.kh * geo.c
    return flat[start : start + count * geo.taps].reshape(count, geo.taps)


def _kernel_matrix(kernel: Any) -> Any:
    """An HWIO kernel as the ``(kw * kh * c, k)`` matrix of window rows (column, row, channel)."""
    xp = array_module(kernel)
    kh, kw, c, k = kernel.shape
    return xp.ascontiguousarray(kernel.transpose(1, 0, 2, 3)).reshape(kw * kh * c, k)


def conv2d_forward(
    x: Any,
    kernel: Any,
    pads: tuple = ((0, 0), (0, 0)),
    epilogue: Callable[[Any], Any] | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Stride-1 cross-correlation of NHWC ``x`` with an HWIO ``kernel`` of any size.

    The zeros of ``pads`` (``((top, bottom), (left, right))``) go straight into the stacked
    rows, with no padded copy of ``x``; ``epilogue``, ``out`` and ``workers`` work as in
    ``im2col.conv2d_forward``, whose call this mirrors (and Winograd's).
    """
    xp = array_module(x)
    dtype = np.result_type(x.dtype, kernel.dtype)
    x = x.astype(dtype, copy=False)
    geo = _Geometry(x.shape, pads, kernel.shape, np.dtype(dtype).itemsize)
    matrix = _kernel_matrix(kernel.astype(dtype, copy=False))
    out = result_array(out, (geo.n, geo.out_h, geo.out_w, geo.k), dtype, xp)
    if out.size == 0:
        return out

    def convolve(blocks: Iterable) -> None:
        for samples, rows in blocks:
            flat, count = _stacked(x, geo, samples, rows)
            products = _SCRATCH.array("grid", (count, geo.kw, geo.k), dtype, xp)
            for r in range(geo.kw):
                xp.matmul(_windows(flat, geo, r, count), matrix, out=products[:, r])
            size, height = samples.stop - samples.start, rows.stop - rows.start
            block = out[samples, rows]
            block[...] = products.reshape(size, height, geo.grid, geo.k)[:, :, : geo.out_w]
            if epilogue is not None:
                epilogue(block)

    work = geo.work()
    blocks = geo.blocks(im2col.parallel_ways(work, workers))
    im2col.run_in_parts(convolve, blocks, work, workers)
    return out


def conv2d_input_gradient(
    grad: Any,
    kernel: Any,
    pads: tuple,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(x) of the stride-1 convolution of ``x`` padded by ``pads`` with ``kernel``.

    The forward of the output gradient padded by ``kh - 1 - top``, ``kh - 1 - bottom``, ...
    (so pads of at most ``kh - 1`` and ``kw - 1``) with the kernel rotated and its channels
    swapped; the result has ``x``'s shape.
    """
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = pads
    if max(top, bottom) > kh - 1 or max(left, right) > kw - 1:
        raise ValueError(f"rowstack input gradient expects pads below the kernel. Received: {pads}")
    full = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
    flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)
    return conv2d_forward(grad, flipped, full, out=out, workers=workers)
