"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3), on NHWC arrays.

Lavin and Gray (2015, "Fast Algorithms for Convolutional Neural Networks") compute each 2x2
output tile from a 4x4 input tile ``d`` and the 3x3 kernel ``g`` as
``A^T [(G g G^T) * (B^T d B)] A``: 16 multiplications instead of 36. Over channels, the 16
element-wise products become 16 matrix products, (tiles x in) @ (in x out), so a VGG-style
layer does 2.25x fewer multiply-adds than im2col, at the cost of additions that transform
the tiles. The transforms hold only 0, +-1 and 1/2, so float32 rounding stays near direct
convolution's.

Two kernels of a training step run here: the forward (``conv2d_forward``, the input padded
as the convolution asks), and the input gradient, which is the same forward with the kernel
rotated and its channels swapped, on the output gradient padded to a full correlation
(``conv2d_input_gradient``). The kernel gradient stays with im2col: its 16 products reduce
over the tiles into (in x out) results, thinner products that measured no faster here.

Work goes in blocks of whole tile rows (a few samples, or a band of one sample), each small
enough to keep its transformed tiles in cache, shared out to threads like ``im2col``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .im2col import (
    MACS_PER_BYTE,
    Scratch,
    array_module,
    padded_copy,
    parallel_ways,
    result_array,
    run_in_parts,
)

# the transformed tiles of one block stay under this many bytes ...
BLOCK_BUDGET_BYTES = 2**20
# ... but a block holds at least this many tiles, or its matrix products get too thin
MIN_BLOCK_TILES = 256

# work arrays of every call (per thread): they never leave a call, and calls on one thread
# run one at a time, so one set serves every convolution of a step
_SCRATCH = Scratch()


def applies(kernel_shape: tuple, strides: tuple, dtype: Any) -> bool:
    """Whether a convolution with this kernel, strides and dtype can run here."""
    kh, kw = kernel_shape[:2]
    return (
        (kh, kw) == (3, 3)
        and tuple(strides) == (1, 1)
        and np.dtype(dtype) in (np.float32, np.float64)
    )


def kernel_transform(kernel: Any) -> Any:
    """``G g G^T`` of an HWIO 3x3 kernel, as a contiguous ``(16, in, out)`` array."""
    xp = array_module(kernel)
    half = kernel.dtype.type(0.5)
    rows = xp.empty((4, 3, *kernel.shape[2:]), dtype=kernel.dtype)  # G g
    _g_rows(kernel[0], kernel[1], kernel[2], rows, half, xp)
    u = xp.empty((4, 4, *kernel.shape[2:]), dtype=kernel.dtype)  # (G g) G^T
    for a in range(4):
        _g_rows(rows[a, 0], rows[a, 1], rows[a, 2], u[a], half, xp)
    return u.reshape(16, *kernel.shape[2:])


def _g_rows(g0: Any, g1: Any, g2: Any, out: Any, half: Any, xp: Any) -> None:
    """The four rows of ``G`` times the three rows ``g0, g1, g2``, into ``out``."""
    out[0] = g0
    xp.add(g0, g2, out=out[1])
    xp.subtract(out[1], g1, out=out[2])
    out[1] += g1
    out[1] *= half
    out[2] *= half
    out[3] = g2


def _tile_counts(out_h: int, out_w: int) -> tuple[int, int]:
    return (out_h + 1) // 2, (out_w + 1) // 2


def _tile_blocks(batch: int, rows: int, row_bytes: int, row_tiles: int, parts: int = 1) -> list:
    """``(samples, tile_rows)`` blocks of about ``BLOCK_BUDGET_BYTES`` of transformed tiles.

    At most a ``parts``-th of all tile rows go in one block, so that ``parts`` threads get work.
    """
    if batch == 0 or rows == 0:
        return []
    per_block = max(BLOCK_BUDGET_BYTES // max(row_bytes, 1), -(-MIN_BLOCK_TILES // row_tiles), 1)
    per_block = max(1, min(per_block, -(-batch * rows // max(parts, 1))))
    if per_block >= rows:
        step = max(1, per_block // rows)
        return [(slice(s, min(batch, s + step)), slice(0, rows)) for s in range(0, batch, step)]
    return [
        (slice(s, s + 1), slice(top, min(rows, top + per_block)))
        for s in range(batch)
        for top in range(0, rows, per_block)
    ]


def input_tiles(x: Any, tile_rows: int, tile_cols: int, out: Any, work: Any) -> None:
    """``B^T d B`` of every 4x4 tile (stride 2) of NHWC ``x`` into ``out`` (4, 4, n, R, C, c).

    ``x`` holds ``2 R + 2`` rows and ``2 C + 2`` columns; ``work`` is ``(4, n, R, 2 C + 2, c)``.
    """
    xp = array_module(x)
    r = 2 * tile_rows
    d0, d1, d2, d3 = x[:, 0:r:2], x[:, 1 : r + 1 : 2], x[:, 2 : r + 2 : 2], x[:, 3 : r + 3 : 2]
    xp.subtract(d0, d2, out=work[0])
    xp.add(d1, d2, out=work[1])
    xp.subtract(d2, d1, out=work[2])
    xp.subtract(d1, d3, out=work[3])
    c = 2 * tile_cols
    for a in range(4):
        t = work[a]
        e0, e1 = t[:, :, 0:c:2], t[:, :, 1 : c + 1 : 2]
        e2, e3 = t[:, :, 2 : c + 2 : 2], t[:, :, 3 : c + 3 : 2]
        xp.subtract(e0, e2, out=out[a, 0])
        xp.add(e1, e2, out=out[a, 1])
        xp.subtract(e2, e1, out=out[a, 2])
        xp.subtract(e1, e3, out=out[a, 3])


def output_tiles(m: Any, y: Any, work: Any) -> None:
    """``A^T m A`` of the products ``m`` (4, 4, n, R, C, k) into ``y`` (n, 2 R, 2 C, k).

    ``work`` is ``(2, 4, n, R, C, k)``.
    """
    xp = array_module(m)
    xp.add(m[0], m[1], out=work[0])
    work[0] += m[2]
    xp.subtract(m[1], m[2], out=work[1])
    work[1] -= m[3]
    n, rows, cols, k = m.shape[2:]
    tiles = y.reshape(n, rows, 2, cols, 2, k)
    for a in range(2):
        p = work[a]
        left, right = tiles[:, :, a, :, 0], tiles[:, :, a, :, 1]
        xp.add(p[0], p[1], out=left)
        left += p[2]
        xp.subtract(p[1], p[2], out=right)
        right -= p[3]


def conv2d_forward(
    x: Any,
    kernel: Any,
    pads: tuple = ((0, 0), (0, 0)),
    epilogue: Callable[[Any], Any] | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """3x3 cross-correlation (stride 1) of NHWC ``x`` padded by ``pads`` with HWIO ``kernel``.

    ``pads`` is ``((top, bottom), (left, right))``; ``epilogue``, ``out`` and ``workers`` are
    as in ``im2col.conv2d_forward``.
    """
    xp = array_module(x)
    n, h, w, c = x.shape
    out_c = kernel.shape[3]
    (top, bottom), (left, right) = pads
    out_h, out_w = max(h + top + bottom - 2, 0), max(w + left + right - 2, 0)
    dtype = np.result_type(x.dtype, kernel.dtype)
    out = result_array(out, (n, out_h, out_w, out_c), dtype, xp)
    if out.size == 0:
        return out
    tile_rows, tile_cols = _tile_counts(out_h, out_w)
    x = x.astype(dtype, copy=False)
    x = padded_copy(x, pads, 2 * tile_rows + 2, 2 * tile_cols + 2, _SCRATCH)
    u = kernel_transform(kernel.astype(dtype, copy=False))
    even = out_h % 2 == 0 and out_w % 2 == 0
    row_bytes = 16 * tile_cols * max(c, out_c) * np.dtype(dtype).itemsize

    def convolve(blocks: Iterable) -> None:
        for samples, rows in blocks:
            size, height = samples.stop - samples.start, rows.stop - rows.start
            tiles = size * height * tile_cols
            band = x[samples, 2 * rows.start : 2 * rows.stop + 2]
            v = _SCRATCH.array("v", (4, 4, size, height, tile_cols, c), dtype, xp)
            work = _SCRATCH.array("rows", (4, size, height, band.shape[2], c), dtype, xp)
            input_tiles(band, height, tile_cols, v, work)
            m = _SCRATCH.array("m", (16, tiles, out_c), dtype, xp)
            xp.matmul(v.reshape(16, tiles, c), u, out=m)
            m = m.reshape(4, 4, size, height, tile_cols, out_c)
            sums = _SCRATCH.array("sums", (2, 4, size, height, tile_cols, out_c), dtype, xp)
            first, last = 2 * rows.start, min(2 * rows.stop, out_h)
            block = out[samples, first:last]
            if even:
                output_tiles(m, block, sums)
            else:
                full = _SCRATCH.array("full", (size, 2 * height, 2 * tile_cols, out_c), dtype, xp)
                output_tiles(m, full, sums)
                block[...] = full[:, : last - first, :out_w]
            if epilogue is not None:
                epilogue(block)

    # transforms touch the arrays; the 16 products make tiles * c * out_c multiply-adds each
    work = x.nbytes + out.nbytes + 16 * n * tile_rows * tile_cols * c * out_c // MACS_PER_BYTE
    blocks = _tile_blocks(n, tile_rows, row_bytes, tile_cols, parallel_ways(work, workers))
    run_in_parts(convolve, blocks, work, workers)
    return out


def flipped_kernel(kernel: Any) -> Any:
    """The kernel of the input gradient: rotated by 180 degrees, in and out swapped."""
    return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def conv2d_input_gradient(
    grad: Any,
    kernel: Any,
    pads: tuple = ((0, 0), (0, 0)),
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(x) of ``conv2d_forward(x, kernel, pads)``, from its output gradient.

    It is the forward of the output gradient padded by ``2 - top``, ``2 - bottom``, ... with
    ``flipped_kernel``; so pads of at most 2 (any 3x3 "valid" or "same" convolution).
    """
    (top, bottom), (left, right) = pads
    if max(top, bottom, left, right) > 2:
        raise ValueError(f"winograd input gradient expects pads of at most 2. Received: {pads}")
    full = ((2 - top, 2 - bottom), (2 - left, 2 - right))
    return conv2d_forward(grad, flipped_kernel(kernel), full, out=out, workers=workers)
