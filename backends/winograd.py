"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3), on NHWC arrays.

Lavin and Gray (2015, "Fast Algorithms for Convolutional Neural Networks") compute each 2x2
output tile from a 4x4 input tile ``d`` and the 3x3 kernel ``g`` as
``A^T [(G g G^T) * (B^T d B)] A``: 16 multiplications instead of 36. Over channels, the 16
element-wise products become 16 matrix products, (tiles x in) @ (in x out), so a VGG-style
layer does 2.25x fewer multiply-adds than im2col, at the cost of additions that transform
the tiles. The transforms hold only 0, +-1 and 1/2, so float32 rounding stays near direct
convolution's.

All three kernels of a training step run here: the forward (``conv2d_forward``, the input
padded as the convolution asks); the input gradient, which is the same forward with the
kernel rotated and its channels swapped, on the output gradient padded to a full correlation
(``conv2d_input_gradient``); and the kernel gradient, ``G^T [(B^T d B) * (A dY A^T)] G``
summed over the tiles: 16 products (in x tiles) @ (tiles x out), then one 16 -> 9 product
(``conv2d_kernel_gradient``). Every transform of a kernel is one small matrix product.

Work goes in blocks of whole tile rows (a few samples, or a band of one sample), each small
enough to keep its transformed tiles in cache, shared out to threads like ``im2col``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .im2col import (
    MACS_PER_BYTE,
    PARALLEL_MIN_BYTES,
    Scratch,
    array_module,
    padded_copy,
    parallel_ways,
    result_array,
    run_in_parts,
    sum_in_fixed_runs,
)

# the transformed tiles of one block stay under this many bytes ...
BLOCK_BUDGET_BYTES = 2**20
# ... but a block holds at least this many tiles, or its matrix products get too thin
MIN_BLOCK_TILES = 256

# a kernel gradient sums its blocks in this many fixed runs (one per thread at most)
KERNEL_GRADIENT_RUNS = 2

# the kernel transform's product goes this many (in * out) columns at a time
TRANSFORM_COLUMNS = 2048

# work arrays of every call (per thread): they never leave a call, and calls on one thread
# run one at a time, so one set serves every convolution of a step
_SCRATCH = Scratch()
_GRADIENT = Scratch()  # the kernel gradient's padded output gradient, beside the padded input


def applies(kernel_shape: tuple, strides: tuple, dtype: Any) -> bool:
    """Whether a convolution with this kernel, strides and dtype can run here."""
    kh, kw = kernel_shape[:2]
    return (
        (kh, kw) == (3, 3)
        and tuple(strides) == (1, 1)
        and np.dtype(dtype) in (np.float32, np.float64)
    )


# G g G^T as one product: row 4a + b of KRON holds G[a, i] * G[b, j] at column 3i + j
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
KRON = np.kron(_G, _G)
# rotating g by 180 degrees reverses its rows and columns: G J = P G with P swapping the
# first and last rows of G, so the rotated kernel's transform is the rows 4P(a) + P(b)
_SWAP = (3, 1, 2, 0)
KRON_ROTATED = KRON[[4 * _SWAP[a] + _SWAP[b] for a in range(4) for b in range(4)]]


def kernel_transform(kernel: Any, rotated: bool = False, out: Any = None) -> Any:
    """``G g G^T`` of an HWIO 3x3 kernel (rotated by 180 degrees if asked), ``(16, in, out)``.

    One matrix product of the 16x9 ``KRON`` with the kernel's 9 taps: it streams the kernel
    once, where a transform row by row made 30 passes (30 ms on a 3x3x512x512 kernel).
    ``out``: a C-ordered array of the result's size to write into (else a new one).
    """
    xp = array_module(kernel)
    matrix = xp.asarray(KRON_ROTATED if rotated else KRON, dtype=kernel.dtype)
    taps = xp.ascontiguousarray(kernel).reshape(9, -1)
    if out is None:
        out = xp.empty((16, taps.shape[1]), dtype=kernel.dtype)
    _chunked_product(matrix, taps, out.reshape(16, -1))
    return out.reshape(16, *kernel.shape[2:])


def _scratch_transform(kernel: Any, dtype: Any, rotated: bool) -> Any:
    """``kernel_transform`` into this thread's work array (it never outlives the call)."""
    kernel = kernel.astype(dtype, copy=False)
    work = _SCRATCH.array("u", (16, *kernel.shape[2:]), dtype, array_module(kernel))
    return kernel_transform(kernel, rotated, work)


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


def _block_tiles(x: Any, samples: slice, rows: slice, tile_cols: int) -> tuple[Any, int]:
    """``input_tiles`` of one block (``samples``, tile ``rows``) of padded ``x`` into this
    thread's work array, as ``(16, tiles, c)``; and the block's tile count."""
    xp = array_module(x)
    size, height, c = samples.stop - samples.start, rows.stop - rows.start, x.shape[3]
    band = x[samples, 2 * rows.start : 2 * rows.stop + 2]
    v = _SCRATCH.array("v", (4, 4, size, height, tile_cols, c), x.dtype, xp)
    work = _SCRATCH.array("rows", (4, size, height, band.shape[2], c), x.dtype, xp)
    input_tiles(band, height, tile_cols, v, work)
    tiles = size * height * tile_cols
    return v.reshape(16, tiles, c), tiles


def _chunked_product(matrix: Any, columns: Any, out: Any) -> None:
    """``out = matrix @ columns`` a few thousand columns at a time (in cache: 1.7x faster)."""
    xp = array_module(columns)
    for start in range(0, columns.shape[1], TRANSFORM_COLUMNS):
        part = slice(start, start + TRANSFORM_COLUMNS)
        xp.matmul(matrix, columns[:, part], out=out[:, part])


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
    u = _scratch_transform(kernel, np.result_type(x.dtype, kernel.dtype), rotated=False)
    return _transformed_forward(x, u, pads, epilogue, out, workers)


def _transformed_forward(
    x: Any,
    u: Any,
    pads: tuple,
    epilogue: Callable[[Any], Any] | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """``conv2d_forward`` with the kernel already transformed: ``u`` is ``(16, in, out)``."""
    xp = array_module(x)
    n, h, w, c = x.shape
    out_c = u.shape[2]
    (top, bottom), (left, right) = pads
    out_h, out_w = max(h + top + bottom - 2, 0), max(w + left + right - 2, 0)
    dtype = u.dtype
    out = result_array(out, (n, out_h, out_w, out_c), dtype, xp)
    if out.size == 0:
        return out
    tile_rows, tile_cols = _tile_counts(out_h, out_w)
    x = x.astype(dtype, copy=False)
    x = padded_copy(x, pads, 2 * tile_rows + 2, 2 * tile_cols + 2, _SCRATCH)
    even = out_h % 2 == 0 and out_w % 2 == 0
    row_bytes = 16 * tile_cols * max(c, out_c) * np.dtype(dtype).itemsize

    def convolve(blocks: Iterable) -> None:
        for samples, rows in blocks:
            size, height = samples.stop - samples.start, rows.stop - rows.start
            v, tiles = _block_tiles(x, samples, rows, tile_cols)
            m = _SCRATCH.array("m", (16, tiles, out_c), dtype, xp)
            xp.matmul(v, u, out=m)
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


def gradient_tiles(g: Any, tile_rows: int, tile_cols: int, out: Any, work: Any) -> None:
    """``A dY A^T`` of every 2x2 tile of the output gradient ``g`` into ``out`` (4, 4, n, R, C, k).

    The forward's ``A^T m A`` read backwards: ``g`` holds ``2 R`` rows and ``2 C`` columns
    (zeros past the output); ``work`` is ``(4, n, R, 2 C, k)``.
    """
    xp = array_module(g)
    y0, y1 = g[:, 0 : 2 * tile_rows : 2], g[:, 1 : 2 * tile_rows : 2]
    work[0] = y0
    xp.add(y0, y1, out=work[1])
    xp.subtract(y0, y1, out=work[2])
    xp.negative(y1, out=work[3])
    c = 2 * tile_cols
    for a in range(4):
        t = work[a]
        e0, e1 = t[:, :, 0:c:2], t[:, :, 1:c:2]
        out[a, 0] = e0
        xp.add(e0, e1, out=out[a, 1])
        xp.subtract(e0, e1, out=out[a, 2])
        xp.negative(e1, out=out[a, 3])


def conv2d_kernel_gradient(
    x: Any,
    grad: Any,
    pads: tuple = ((0, 0), (0, 0)),
    workers: int | None = None,
) -> Any:
    """d(loss)/d(kernel) of ``conv2d_forward(x, kernel, pads)`` from its output gradient.

    Per tile ``G^T [(B^T d B) * (A dY A^T)] G``: 16 products ``(in x tiles) @ (tiles x out)``
    summed over the tiles, then one ``16 -> 9`` product (``KRON``'s transpose). Blocks of tiles
    are summed in ``KERNEL_GRADIENT_RUNS`` fixed runs, and the runs in order, so the result does
    not depend on the thread count.
    """
    xp = array_module(x)
    n, h, w, c = x.shape
    out_c = grad.shape[3]
    (top, bottom), (left, right) = pads
    out_h, out_w = grad.shape[1:3]
    if (out_h, out_w) != (h + top + bottom - 2, w + left + right - 2):
        raise ValueError(f"winograd kernel gradient: grad {grad.shape} does not fit x {x.shape}")
    dtype = np.result_type(x.dtype, grad.dtype)
    tile_rows, tile_cols = _tile_counts(out_h, out_w)
    x = padded_copy(
        x.astype(dtype, copy=False), pads, 2 * tile_rows + 2, 2 * tile_cols + 2, _SCRATCH
    )
    # the output gradient with zeros past an odd output size (those outputs do not exist)
    edge = ((0, 2 * tile_rows - out_h), (0, 2 * tile_cols - out_w))
    g = padded_copy(grad.astype(dtype, copy=False), edge, 2 * tile_rows, 2 * tile_cols, _GRADIENT)
    row_bytes = 16 * tile_cols * max(c, out_c) * np.dtype(dtype).itemsize
    work = x.nbytes + g.nbytes + 16 * n * tile_rows * tile_cols * c * out_c // MACS_PER_BYTE
    parts = KERNEL_GRADIENT_RUNS if work >= PARALLEL_MIN_BYTES else 1
    blocks = _tile_blocks(n, tile_rows, row_bytes, tile_cols, parts)

    def correlate(block: tuple[slice, slice], into: Any) -> None:
        samples, rows = block
        size, height = samples.stop - samples.start, rows.stop - rows.start
        v, tiles = _block_tiles(x, samples, rows, tile_cols)
        dm = _SCRATCH.array("dm", (4, 4, size, height, tile_cols, out_c), dtype, xp)
        g_work = _SCRATCH.array("g_rows", (4, size, height, 2 * tile_cols, out_c), dtype, xp)
        gradient_tiles(g[samples, 2 * rows.start : 2 * rows.stop], height, tile_cols, dm, g_work)
        xp.matmul(v.transpose(0, 2, 1), dm.reshape(16, tiles, out_c), out=into)

    summed = _SCRATCH.array("summed", (16, c, out_c), dtype, xp)
    sum_in_fixed_runs(correlate, blocks, KERNEL_GRADIENT_RUNS, summed, _SCRATCH, work, workers)
    result = xp.empty((9, c * out_c), dtype=dtype)
    _chunked_product(xp.asarray(KRON.T, dtype=dtype), summed.reshape(16, -1), result)
    return result.reshape(3, 3, c, out_c)


def conv2d_input_gradient(
    grad: Any,
    kernel: Any,
    pads: tuple = ((0, 0), (0, 0)),
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(x) of ``conv2d_forward(x, kernel, pads)``, from its output gradient.

    It is the forward of the output gradient padded by ``2 - top``, ``2 - bottom``, ... with
    the kernel rotated by 180 degrees and its channels swapped; so pads of at most 2 (any 3x3
    "valid" or "same" convolution). The swap is a transposed view of the transformed kernel.
    """
    (top, bottom), (left, right) = pads
    if max(top, bottom, left, right) > 2:
        raise ValueError(f"winograd input gradient expects pads of at most 2. Received: {pads}")
    full = ((2 - top, 2 - bottom), (2 - left, 2 - right))
    u = _scratch_transform(kernel, np.result_type(grad.dtype, kernel.dtype), rotated=True)
    return _transformed_forward(grad, u.transpose(0, 2, 1), full, out=out, workers=workers)
