"""Max and average pooling on NHWC arrays, in the cache-sized blocks of ``im2col``.

Pooling reduces rows first (long contiguous runs) and then columns, one element-wise maximum
(or sum) per window offset. The gradient of non-overlapping max-pooling compares each tile with
its maximum repeated over the tile; overlapping windows take the first arg-max of each window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .im2col import (
    Scratch,
    array_module,
    column_blocks,
    conv_output_size,
    input_rows,
    result_array,
    run_in_parts,
    window_view,
)

# max-pool tiles of up to this many cells (2x2: VGG16's, U-Net's) route gradients by one
# compare per window offset, with no ranking pass where maxima tie (after a relu: 3-4x
# faster); bigger tiles (ConvLarge's 5x5) rank faster, one compare per offset costing more
OFFSET_TILE_CELLS = 4


def _offset_reduce(ufunc: Any, x: Any, axis: int, window: int, stride: int, out: Any) -> Any:
    """Combine with ``ufunc`` the ``window`` strided slices of ``axis`` that fill ``out``."""
    count = out.shape[axis]

    def part(offset: int) -> Any:
        where = [slice(None)] * x.ndim
        where[axis] = slice(offset, offset + stride * (count - 1) + 1, stride)
        return x[tuple(where)]

    if window == 1:
        out[...] = part(0)
        return out
    ufunc(part(0), part(1), out=out)
    for offset in range(2, window):
        ufunc(out, part(offset), out=out)
    return out


def _pool_reduce(
    ufunc: Any,
    x: Any,
    window: tuple,
    strides: tuple,
    scratch: Scratch | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Reduce every window of padded NHWC ``x`` with ``ufunc``: rows first, then columns.

    ``out``: see ``im2col.result_array``; ``workers``: threads (default ``worker_count()``).
    """
    xp = array_module(x)
    scratch = scratch or Scratch()
    (kh, kw), (sh, sw) = window, strides
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh), conv_output_size(w, kw, sw)
    out = result_array(out, (n, out_h, out_w, c), x.dtype, xp)

    def reduce_rows(blocks: Iterable) -> None:
        for samples, rows in blocks:
            size, height = samples.stop - samples.start, rows.stop - rows.start
            lines = scratch.array("rows", (size, height, w, c), x.dtype, xp)  # runs of w * c
            _offset_reduce(ufunc, x[samples, input_rows(rows, kh, sh)], 1, kh, sh, lines)
            _offset_reduce(ufunc, lines, 2, kw, sw, out[samples, rows])

    if out.size:
        row_bytes = max(kh, sh) * w * c * x.itemsize  # input read per output row
        run_in_parts(reduce_rows, list(column_blocks(n, out_h, row_bytes)), x.nbytes, workers)
    return out


def max_pool_forward(
    x: Any, window: tuple[int, int], strides: tuple[int, int], *args: Any, **kwargs: Any
) -> Any:
    """Max over every window of padded NHWC ``x`` (``scratch``, ``out``, ``workers`` follow)."""
    return _pool_reduce(array_module(x).maximum, x, window, strides, *args, **kwargs)


def window_sums(
    x: Any, window: tuple[int, int], strides: tuple[int, int], *args: Any, **kwargs: Any
) -> Any:
    """Sum over every window of padded NHWC ``x`` (``scratch``, ``out``, ``workers`` follow)."""
    return _pool_reduce(array_module(x).add, x, window, strides, *args, **kwargs)


def _first_winners(winners: Any, window: tuple[int, int]) -> Any:
    """Keep only the first (row-major) ``True`` of every tile of ``winners`` (ties)."""
    xp = array_module(winners)
    kh, kw = window
    n, height, _, width, c = winners.shape
    tiles = winners.reshape(n, height, kh, width // kw, kw, c)
    position = xp.arange(kh * kw, dtype=np.int32).reshape(1, 1, kh, 1, kw, 1)
    ranked = xp.where(tiles, position, kh * kw)
    first = ranked.min(axis=(2, 4), keepdims=True)
    return ((ranked == first) & tiles).reshape(winners.shape)


def _route(winners: Any, spread: Any, dest: Any, finite: bool, xp: Any) -> None:
    """``dest`` = the gradient ``spread`` where ``winners``, else 0.

    A product while the gradients are finite; a pick otherwise, so that the cells that did
    not win get an exact 0 even from an inf or NaN gradient.
    """
    if finite:
        xp.multiply(winners, spread, out=dest)
    else:
        dest[...] = 0
        xp.copyto(dest, spread, where=winners)


def _tile_max_gradient(
    x: Any,
    pooled: Any,
    grad: Any,
    window: tuple[int, int],
    scratch: Scratch,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Gradient of non-overlapping max-pooling: each tile's gradient to its first maximum."""
    xp = array_module(x)
    kh, kw = window
    n, out_h, out_w, c = pooled.shape
    image = result_array(out, x.shape, grad.dtype, xp)
    if (out_h * kh, out_w * kw) != x.shape[1:3]:
        image[...] = 0

    def route(blocks: Iterable) -> None:
        for samples, rows in blocks:
            size, height = samples.stop - samples.start, rows.stop - rows.start
            cells = slice(rows.start * kh, rows.stop * kh)
            shape = (size, height, kh, out_w * kw, c)
            tiles = x[samples, cells, : out_w * kw].reshape(shape)
            # the pooled maxima, then the gradients, repeated along the width
            wide = scratch.array("wide", (size, height, out_w, kw, c), pooled.dtype, xp)
            wide[...] = pooled[samples, rows, :, None, :]
            winners = scratch.array("winners", shape, np.bool_, xp)
            xp.equal(tiles, wide.reshape(size, height, 1, out_w * kw, c), out=winners)
            # ties (a NaN window has no winner: it could hide a tie in the count)
            ties = int(xp.count_nonzero(winners)) != size * height * out_w * c
            if ties or xp.isnan(wide).any():
                winners = _first_winners(winners, window)
            wide[...] = grad[samples, rows, :, None, :]
            routed = image[samples, cells, : out_w * kw].reshape(shape)
            spread = wide.reshape(size, height, 1, out_w * kw, c)
            finite = bool(xp.isfinite(xp.add.reduce(wide, axis=None)))
            _route(winners, spread, routed, finite, xp)

    row_bytes = kh * x.shape[2] * c * x.itemsize  # input read per output row
    run_in_parts(route, list(column_blocks(n, out_h, row_bytes)), x.nbytes, workers)
    return image


def tile_max_gradient_by_offsets(
    x: Any,
    pooled: Any,
    grad: Any,
    window: tuple[int, int],
    scratch: Scratch | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Gradient of non-overlapping max-pooling, one pass per window offset.

    The same result as ``max_pool_gradient`` with ``window == strides``, found by comparing
    each of the ``kh * kw`` strided views of padded ``x`` with ``pooled`` in row-major order
    and keeping only the first hit per window: no ranking pass when maxima tie (after a relu
    a quarter of 2x2 windows may be all zeros, where this is 3-4x faster); about as fast
    without ties. A window holding NaN has no hit: it routes nothing (0 everywhere).
    """
    xp = array_module(x)
    scratch = scratch or Scratch()
    kh, kw = window
    n, out_h, out_w, c = pooled.shape
    image = result_array(out, x.shape, grad.dtype, xp)
    if (out_h * kh, out_w * kw) != x.shape[1:3]:
        image[...] = 0
    finite = bool(xp.isfinite(xp.add.reduce(grad, axis=None)))
    last = kh * kw - 1

    def route(blocks: Iterable) -> None:
        for samples, rows in blocks:
            shape = (samples.stop - samples.start, rows.stop - rows.start, out_w, c)
            taken = scratch.array("taken", shape, np.bool_, xp)
            hit = scratch.array("hit", shape, np.bool_, xp)
            maxima, spread = pooled[samples, rows], grad[samples, rows]
            for offset in range(kh * kw):
                i, j = divmod(offset, kw)
                cells = (samples, slice(rows.start * kh + i, rows.stop * kh, kh))
                cells += (slice(j, out_w * kw, kw),)
                if offset == 0:
                    found = xp.equal(x[cells], maxima, out=taken)
                else:
                    found = xp.equal(x[cells], maxima, out=hit)
                    xp.greater(found, taken, out=found)  # a hit where none was before
                    if offset != last:
                        xp.logical_or(taken, found, out=taken)
                _route(found, spread, image[cells], finite, xp)

    row_bytes = kh * x.shape[2] * c * x.itemsize  # input read per output row
    run_in_parts(route, list(column_blocks(n, out_h, row_bytes)), x.nbytes, workers)
    return image


def max_pool_gradient(
    x: Any,
    pooled: Any,
    grad: Any,
    window: tuple[int, int],
    strides: tuple[int, int],
    scratch: Scratch | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Route each output gradient to the first maximum of its window in padded ``x``.

    ``pooled`` is the forward result. Non-overlapping windows of up to ``OFFSET_TILE_CELLS``
    cells compare each window offset with the maxima (``tile_max_gradient_by_offsets``);
    bigger ones compare the input with the maxima repeated over each window, ranking the
    positions only where maxima tie; overlapping windows find the first arg-max of every
    window and add the gradient back with a loop over window positions. Where ``pooled``
    holds a NaN, the NaN cells of ``x`` get NaN (the derivative at a NaN is NaN).
    """
    xp = array_module(x)
    (kh, kw), (sh, sw) = window, strides
    if (kh, kw) == (sh, sw) and pooled.size:
        if kh * kw <= OFFSET_TILE_CELLS:
            image = tile_max_gradient_by_offsets(x, pooled, grad, window, scratch, out, workers)
        else:
            image = _tile_max_gradient(x, pooled, grad, window, scratch or Scratch(), out, workers)
    else:
        image = _overlapping_max_gradient(x, pooled, grad, window, strides, out)
    # the derivative at a NaN is NaN (backends.interface); its window gave 0 to the rest
    if xp.isnan(pooled).any():
        xp.copyto(image, x, where=xp.isnan(x))
    return image


def _overlapping_max_gradient(
    x: Any, pooled: Any, grad: Any, window: tuple, strides: tuple, out: Any
) -> Any:
    """Max-pool gradient of any windows: each window's first arg-max, then one loop per offset."""
    xp = array_module(x)
    (kh, kw), (sh, sw) = window, strides
    n, h, w, c = x.shape
    out_h, out_w = pooled.shape[1:3]
    windows = window_view(x, window, strides)
    flat = windows.transpose(0, 1, 2, 5, 3, 4).reshape(n, out_h, out_w, c, kh * kw)
    first_max = flat.argmax(axis=-1) if flat.size else xp.zeros(pooled.shape, dtype=np.intp)
    image = result_array(out, x.shape, grad.dtype, xp)
    image[...] = 0
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
