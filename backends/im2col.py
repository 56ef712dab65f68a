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
with a loop over the ``kh * kw`` kernel positions, never over pixels. Convolutions with few
filters use banded products instead of im2col columns (``banded``); pooling, in the same
blocks, is in ``pooling``.

Big ops share their blocks out to a few threads (``run_in_parts``); work
arrays are reused from call to call (``Scratch``), since fresh memory costs a page fault per
page, and a caller that knows a result's lifetime (the numpy backend's buffer plan) passes the
array to write it into as ``out``. The functions work on NumPy arrays and on arrays of any
module exposing the same API (CuPy), chosen from the array's type.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import banded

# keep one column buffer under this many bytes (bigger convolutions go in blocks of samples
# or of output rows); 1 MiB fits a core's L2 cache and measured fastest on ConvLarge
IM2COL_BUDGET_BYTES = 2**20

# ... but at least this many output pixels per block: with many channels (VGG16's 3x3x512
# windows are 18 KiB of columns each) a 1 MiB block holds a few dozen pixels, and its matrix
# products are too thin for BLAS (several times slower per FLOP)
MIN_BLOCK_PIXELS = 1024

# col2im adds a block's window gradients with kh * kw calls: bigger blocks, fewer calls
COL2IM_BUDGET_FACTOR = 4

# threads for the blocks of one op (None: one per usable CPU) and the least work (bytes of
# columns or of the image) worth splitting between them (and running with 1-thread BLAS)
WORKERS: int | None = None
PARALLEL_MIN_BYTES = 4 * 2**20
# ... counting a matrix product's multiply-adds as this many to a byte (a core copies about
# 10 GB/s and multiplies-adds about 70 G/s): VGG16's 14x14x512 layers at batch 1 copy 3.6 MB
# of columns but make 0.9 GFLOP, 7 ms on one core
MACS_PER_BYTE = 8


def conv_work(pixels: int, taps: int, outputs: int, itemsize: int) -> int:
    """The work of a convolution kernel in bytes: its columns, plus its multiply-adds."""
    return pixels * taps * itemsize + pixels * taps * outputs // MACS_PER_BYTE


# a kernel gradient sums its blocks in this many fixed runs (see conv2d_kernel_gradient)
REDUCTION_CHUNKS = 4

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


def column_blocks(
    batch: int,
    out_h: int,
    row_bytes: int,
    factor: int = 1,
    min_budget: int = 0,
    parts: int = 1,
) -> Iterator[tuple[slice, slice]]:
    """Yield ``(samples, output_rows)`` blocks whose columns fit ``factor`` budgets.

    Whole samples are grouped while one sample's columns fit the budget (at least
    ``min_budget`` bytes, at most a ``parts``-th of the whole, so that ``parts`` threads
    get work); larger samples are cut into bands of output rows, one sample at a time (so a
    block of the NHWC output is always contiguous).
    """
    if batch == 0 or out_h == 0 or row_bytes == 0:
        return
    budget = max(IM2COL_BUDGET_BYTES * factor, min_budget)
    budget = min(budget, -(-batch * out_h * row_bytes // max(parts, 1)))
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


class Scratch:
    """Work arrays an op reuses from call to call (per thread); they never leave the op.

    Fresh memory costs a page fault per 4 KiB page on first touch, which on the sizes of a
    convolution step costs as much as the arithmetic; a compiled step keeps one ``Scratch``
    per convolution or pooling node.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def array(self, name: str, shape: tuple, dtype: Any, xp: Any = np) -> Any:
        """An uninitialised work array that never leaves the op (C order)."""
        size = math.prod(shape)
        store = self._local.__dict__
        buffer = store.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = xp.empty(size, dtype=dtype)
            store[name] = buffer
        return buffer[:size].reshape(shape)


def result_array(out: Any, shape: tuple, dtype: Any, xp: Any = np) -> Any:
    """The array a kernel writes its result into.

    ``out`` is None (a new array), or a function ``out(shape, dtype)`` returning the array
    to use (the numpy backend's buffer plan hands out buffers whose values are dead).
    """
    if out is None:
        return xp.empty(shape, dtype=dtype)
    array = out(tuple(shape), np.dtype(dtype))
    assert array.shape == tuple(shape) and array.dtype == dtype, (array.shape, shape)
    return array


def padded_copy(x: Any, pads: tuple, rows: int, cols: int, scratch: Scratch) -> Any:
    """NHWC ``x`` padded by ``pads``, then with zeros at the bottom/right up to ``rows`` x ``cols``.

    The array is ``scratch``'s (written in one pass, only its borders zeroed: no fresh
    memory), or ``x`` itself when nothing is added. ``pads``: ``((top, bottom), (left, right))``.
    """
    (top, _), (left, _) = pads
    n, h, w, c = x.shape
    if (top, left, h, w) == (0, 0, rows, cols):
        return x
    out = scratch.array("padded", (n, rows, cols, c), x.dtype, array_module(x))
    bottom, right = top + h, left + w
    out[:, :top] = 0
    out[:, bottom:] = 0
    out[:, top:bottom, :left] = 0
    out[:, top:bottom, right:] = 0
    out[:, top:bottom, left:right] = x
    return out


def fill_columns(x: Any, rows: slice, window: tuple, strides: tuple, scratch: Scratch) -> Any:
    """The ``(pixels, kh * kw * c)`` column matrix of output ``rows`` of NHWC ``x``.

    Channel-major columns come back as a transposed (Fortran-ordered) view, which matrix
    products take without copying.
    """
    (kh, kw), (sh, _) = window, strides
    view = window_view(x[:, input_rows(rows, kh, sh)], window, strides)
    n, out_h, out_w, _, _, c = view.shape
    size, taps = n * out_h * out_w, kh * kw * c
    if pixel_major(window, c):
        columns = scratch.array("columns", view.shape, x.dtype, array_module(x))
        columns[...] = view
        return columns.reshape(size, taps)
    shape = (kh, kw, c, n, out_h, out_w)
    columns = scratch.array("columns", shape, x.dtype, array_module(x))
    columns[...] = view.transpose(3, 4, 5, 0, 1, 2)
    return columns.reshape(taps, size).T


def fill_bands(
    x: Any, rows: slice, band: int, window: tuple, strides: tuple, scratch: Scratch
) -> Any:
    """The ``(pixels // band, kh * L * c)`` band matrix of output ``rows`` (see ``banded``)."""
    xp = array_module(x)
    view = banded.band_view(x, rows, band, window, strides, xp)
    columns = scratch.array("columns", view.shape, x.dtype, xp)
    columns[...] = view
    return columns.reshape(-1, math.prod(view.shape[3:]))


class _Layout:
    """How one convolution makes its column matrix: im2col (``band == 1``) or bands."""

    def __init__(self, kernel_shape: tuple, out_w: int, strides: tuple, itemsize: int) -> None:
        kh, kw, c, out_c = kernel_shape
        self.window, self.strides = (kh, kw), strides
        self.band = banded.band_width(out_w, kw, strides[1], out_c)
        length = banded.band_length(self.band, kw, strides[1])
        self.taps = kh * length * c if self.band > 1 else kh * kw * c  # per column row
        self.row_bytes = (out_w // self.band) * self.taps * itemsize  # of one output row
        self.outputs = self.band * out_c  # outputs per column-matrix row
        self.min_budget = MIN_BLOCK_PIXELS * self.taps * itemsize // self.band

    def blocks(
        self, batch: int, out_h: int, factor: int = 1, parts: int = 1
    ) -> list[tuple[slice, slice]]:
        """The ``column_blocks`` of this layout."""
        return list(column_blocks(batch, out_h, self.row_bytes, factor, self.min_budget, parts))

    def kernel_matrix(self, kernel: Any) -> Any:
        """The kernel as the matrix the columns multiply."""
        xp = array_module(kernel)
        if self.band > 1:
            return banded.banded_kernel(kernel, self.band, self.strides[1], xp)
        return xp.ascontiguousarray(kernel.reshape(-1, kernel.shape[3]))

    def columns(self, x: Any, rows: slice, scratch: Scratch) -> Any:
        if self.band > 1:
            return fill_bands(x, rows, self.band, self.window, self.strides, scratch)
        return fill_columns(x, rows, self.window, self.strides, scratch)


def parallel_ways(work_bytes: int, workers: int | None = None) -> int:
    """How many threads ``run_in_parts`` would share an op touching ``work_bytes`` between."""
    if work_bytes < PARALLEL_MIN_BYTES or workers == 1:
        return 1
    return workers or worker_count()


def worker_count() -> int:
    """Threads for one big op's blocks: ``WORKERS``, else ``MINIDL_NUMPY_THREADS``, else CPUs."""
    if WORKERS is not None:
        return max(1, WORKERS)
    from_env = os.environ.get("MINIDL_NUMPY_THREADS", "").strip()
    if from_env.isdigit():
        return max(1, int(from_env))
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - platforms without affinity


class _SingleThreadedBlas:
    """Context in which BLAS runs on the calling thread only (re-entrant, thread-safe).

    A big op makes hundreds of small matrix products, one per block, and runs its blocks on
    its own threads; a multi-threaded BLAS would wake (and, on a busy machine, wait for) its
    threads on every product and oversubscribe the cores, which measured many times slower.
    A compiled step whose kernels share out their blocks holds this context for the whole
    call (``single_threaded_blas``): handing OpenBLAS its threads back after each op woke
    them to spin beside the next op's threads (VGG16's gradients ran 1.3x slower).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[tuple[Any, int]] = []
        self._libraries: list | None = None
        self._modules = 0

    def _blas_libraries(self) -> list:
        # scanned again after imports, which may load another BLAS (the theano backend's C
        # code links SciPy's OpenBLAS beside NumPy's); a scan takes about half a millisecond
        if self._libraries is None or self._modules != len(sys.modules):
            self._modules = len(sys.modules)
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - scikit-learn, a dependency, brings it
                self._libraries = []
            else:
                selected = ThreadpoolController().select(user_api="blas")
                self._libraries = list(selected.lib_controllers)
        return self._libraries

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                libraries = self._blas_libraries()
                self._saved = [(lib, lib.get_num_threads()) for lib in libraries]
                for lib, threads in self._saved:
                    if threads != 1:
                        lib.set_num_threads(1)
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, threads in self._saved:
                    if threads != 1:
                        lib.set_num_threads(threads)


_single_threaded_blas = _SingleThreadedBlas()


def single_threaded_blas() -> _SingleThreadedBlas:
    """The (re-entrant) context in which BLAS runs on one thread; ``run_in_parts`` uses it."""
    return _single_threaded_blas


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _thread_pool(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="minidl-blocks")
        return _pools[threads]


class _SharedIterator:
    """An iterator that several threads may draw from, each item going to one of them."""

    def __init__(self, items: list) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()

    def __iter__(self) -> _SharedIterator:
        return self

    def __next__(self) -> Any:
        with self._lock:
            return next(self._items)


def run_in_parts(
    function: Callable[[Iterable], Any], items: list, work_bytes: int, workers: int | None = None
) -> list:
    """Let ``function`` consume ``items`` on several threads; one result per thread.

    Ops whose work (bytes touched; ``conv_work`` for convolutions) is under
    ``PARALLEL_MIN_BYTES``, given ``workers=1`` or made of one item
    call ``function(items)`` once on the caller's thread (kernels plan at least
    ``parallel_ways`` items where they can). Bigger ones run with single-threaded
    BLAS and hand every thread (the caller's and up to ``workers - 1`` pool threads, default
    ``worker_count()``; NumPy and BLAS release the GIL) the same shared iterator, so a thread
    that the OS leaves waiting simply takes fewer items. Items must write disjoint memory.
    """
    ways = min(parallel_ways(work_bytes, workers), len(items))
    if ways <= 1:  # one thread (BLAS keeps its own, unless a caller holds it to one)
        return [function(items)] if items else []
    with _single_threaded_blas:
        shared = _SharedIterator(items)
        futures = [_thread_pool(ways - 1).submit(function, shared) for _ in range(ways - 1)]
        first = function(shared)
        return [first] + [future.result() for future in futures]


def sum_in_fixed_runs(
    product: Callable[[Any, Any], None],
    blocks: list,
    runs: int,
    out: Any,
    scratch: Scratch,
    work_bytes: int,
    workers: int | None = None,
) -> Any:
    """``out`` = the sum over ``blocks`` of ``product(block, into)`` (which writes into ``into``).

    The blocks go in ``runs`` fixed runs of consecutive blocks, each run summed into its own
    partial (the first is ``out``, the others ``scratch``'s), the runs shared out to threads
    and the partials added in run order: the result does not depend on which thread took
    which run, so a seeded training run is repeatable on any thread count.
    """
    xp = array_module(out)
    count = min(len(blocks), runs)
    if count == 0:
        out[...] = 0
        return out
    partials = [out]
    if count > 1:
        partials += list(scratch.array("partials", (count - 1, *out.shape), out.dtype, xp))
    chunks = [
        (k, blocks[len(blocks) * k // count : len(blocks) * (k + 1) // count]) for k in range(count)
    ]

    def accumulate(items: Iterable) -> None:
        for k, run in items:
            total = partials[k]
            for index, block in enumerate(run):
                if index == 0:
                    product(block, total)
                else:
                    extra = scratch.array("product", total.shape, total.dtype, xp)
                    product(block, extra)
                    total += extra

    run_in_parts(accumulate, chunks, work_bytes, workers)
    for part in partials[1:]:
        out += part
    return out


def conv2d_forward(
    x: Any,
    kernel: Any,
    strides: tuple[int, int],
    scratch: Scratch | None = None,
    epilogue: Callable[[Any], Any] | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Valid cross-correlation of padded NHWC ``x`` with HWIO ``kernel`` (in blocks).

    ``epilogue(block)``, when given, updates each block of the result in place while it is
    still in cache (the bias and activation that follow a convolution layer). ``out``: see
    ``result_array``; ``workers`` caps the threads (default ``worker_count()``).
    """
    xp = array_module(x)
    scratch = scratch or Scratch()
    n, h, w, _ = x.shape
    kh, kw, _, out_c = kernel.shape
    out_h, out_w = conv_output_size(h, kh, strides[0]), conv_output_size(w, kw, strides[1])
    layout = _Layout(kernel.shape, out_w, strides, x.itemsize)
    matrix = layout.kernel_matrix(kernel)
    dtype = np.result_type(x.dtype, kernel.dtype)
    out = result_array(out, (n, out_h, out_w, out_c), dtype, xp)

    def convolve(blocks: Iterable) -> None:
        for samples, rows in blocks:
            columns = layout.columns(x[samples], rows, scratch)
            block = out[samples, rows]
            xp.dot(columns, matrix, out=block.reshape(-1, layout.outputs))
            if epilogue is not None:
                epilogue(block)

    work = conv_work(n * out_h * out_w, kh * kw * x.shape[3], out_c, x.itemsize)
    blocks = layout.blocks(n, out_h, parts=parallel_ways(work, workers))
    run_in_parts(convolve, blocks, work, workers)
    return out


def conv2d_kernel_gradient(
    x: Any,
    grad: Any,
    kernel_shape: tuple,
    strides: tuple,
    scratch: Scratch | None = None,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(kernel) from padded input ``x`` and output gradient ``grad`` (in blocks).

    The blocks are summed in ``REDUCTION_CHUNKS`` fixed runs (``sum_in_fixed_runs``): a
    seeded training run is repeatable on any thread count.
    """
    xp = array_module(x)
    scratch = scratch or Scratch()
    n = x.shape[0]
    out_h, out_w = grad.shape[1:3]
    layout = _Layout(kernel_shape, out_w, strides, x.itemsize)
    kh, kw, c, out_c = kernel_shape
    work = conv_work(n * out_h * out_w, kh * kw * c, out_c, x.itemsize)
    # blocks (and so the order of the sums) must not depend on the thread count
    parts = REDUCTION_CHUNKS if work >= PARALLEL_MIN_BYTES else 1
    blocks = layout.blocks(n, out_h, parts=parts)

    def correlate(block: tuple[slice, slice], into: Any) -> None:
        samples, rows = block
        columns = layout.columns(x[samples], rows, scratch)
        xp.dot(columns.T, grad[samples, rows].reshape(-1, layout.outputs), out=into)

    result = xp.empty((layout.taps, layout.outputs), dtype=grad.dtype)
    sum_in_fixed_runs(correlate, blocks, REDUCTION_CHUNKS, result, scratch, work, workers)
    if layout.band > 1:
        return banded.fold_kernel_gradient(result, layout.band, kernel_shape, strides[1])
    return result.reshape(kernel_shape)


def conv2d_input_gradient(
    grad: Any,
    kernel: Any,
    padded_shape: tuple,
    strides: tuple[int, int],
    scratch: Scratch | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(padded input) from the output gradient and the kernel (in blocks).

    Each block's window gradients come out of one matrix product and are added back into
    the image (col2im): band by band (see ``banded``), or for im2col columns one channel-
    major row per kernel tap, added into channel planes with a loop over the ``kh * kw``
    kernel positions, the planes then written into the NHWC result.
    """
    xp = array_module(grad)
    scratch = scratch or Scratch()
    n, out_h, out_w, out_c = grad.shape
    kh, kw, c, _ = kernel.shape
    (sh, sw), width = strides, padded_shape[2]
    layout = _Layout(kernel.shape, out_w, strides, grad.itemsize)
    matrix = layout.kernel_matrix(kernel)
    work = conv_work(n * out_h * out_w, kh * kw * c, out_c, grad.itemsize)
    parts = min(parallel_ways(work, workers), n)  # whole samples: bands of one overlap
    blocks = layout.blocks(n, out_h, COL2IM_BUDGET_FACTOR, parts)
    overlapping = len(blocks) > n  # bands of rows overlap: add them up in a zeroed image
    image = result_array(out, tuple(padded_shape), grad.dtype, xp)
    if overlapping or layout.band > 1:
        image[...] = 0
    elif out_h and out_w:
        image[:, input_rows(slice(0, out_h), kh, sh).stop :] = 0  # rows no window reads

    def scatter_bands(blocks: Iterable) -> None:
        length = banded.band_length(layout.band, kw, sw)
        for samples, rows in blocks:
            g = grad[samples, rows].reshape(-1, layout.outputs)
            windows = scratch.array("windows", (g.shape[0], matrix.shape[0]), g.dtype, xp)
            xp.dot(g, matrix.T, out=windows)
            size, height = samples.stop - samples.start, rows.stop - rows.start
            windows = windows.reshape(size, height, out_w // layout.band, kh, length, c)
            top = rows.start * sh
            banded.add_band_gradients(
                image[samples], windows, top, layout.band, (kh, kw), strides, xp
            )

    def scatter(blocks: Iterable) -> None:
        for samples, rows in blocks:
            block = grad[samples, rows]
            size, height = block.shape[:2]
            g = block.reshape(-1, out_c)
            windows = scratch.array("windows", (kh * kw * c, g.shape[0]), g.dtype, xp)
            xp.dot(matrix, g.T, out=windows)
            windows = windows.reshape(kh, kw, c, size, height, out_w)
            band = input_rows(rows, kh, sh)
            shape = (c, size, band.stop - band.start, width)
            planes = scratch.array("planes", shape, g.dtype, xp)
            planes[...] = 0
            for i in range(kh):
                taps = slice(i, i + sh * (height - 1) + 1, sh)
                for j in range(kw):
                    planes[:, :, taps, j : j + sw * (out_w - 1) + 1 : sw] += windows[i, j]
            if overlapping:
                image[samples, band] += planes.transpose(1, 2, 3, 0)
            else:
                image[samples, band] = planes.transpose(1, 2, 3, 0)

    scatter_work = scatter_bands if layout.band > 1 else scatter
    if overlapping:  # the bands of one sample overlap: keep each sample on one thread
        per_sample = [[b for b in blocks if b[0].start == s] for s in range(n)]
        sample_groups = lambda groups: [scatter_work(group) for group in groups]  # noqa: E731
        run_in_parts(sample_groups, per_sample, image.nbytes, workers)
    else:
        run_in_parts(scatter_work, blocks, work, workers)
    return image
