"""Element-wise kernels shared out to threads (the ``workers`` the ``threads`` pass gives them).

A big element-wise op (a float ufunc with an operand of ``im2col.PARALLEL_MIN_BYTES`` or more;
a result known to be smaller at compile time keeps the plain ufunc, ``small``) is cut along the
first axis its result spans ``workers`` times or more into ``workers`` slabs, and the ufunc
writes each slab of one result array on ``im2col``'s threads (NumPy releases the GIL). Every
element gets the arithmetic it gets on one thread, so the results are the same bits.
A big sum over leading axes (``sum_to``'s) always adds ``SUM_PARTS`` fixed slabs, their partial
sums in order, whether threads run them or not: the same bits on any thread count.
``SPLIT = False`` keeps every such op on the calling thread, with the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import im2col

SPLIT = True
SUM_PARTS = 4


def _slab(a: Any, axis: int, ndim: int, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of ``axis`` (of an ``ndim``-d result) of operand ``a`` (broadcast: all)."""
    if not isinstance(a, np.ndarray):
        return a
    own = axis - (ndim - a.ndim)
    if own < 0 or a.shape[own] == 1:
        return a
    return a[(slice(None),) * own + (slice(lo, hi),)]


def small(shape: tuple, dtype: Any) -> bool:
    """Whether a result of static ``shape`` (``None``: known only at run time) is too small
    to split, whatever its unknown sizes."""
    return None not in shape and math.prod(shape) * np.dtype(dtype).itemsize < (
        im2col.PARALLEL_MIN_BYTES
    )


def split(ufunc: Any, workers: int) -> Callable[..., Any]:
    """``ufunc`` as a kernel whose big float results are computed by ``workers`` threads."""

    def kernel(*args: Any) -> Any:
        limit = im2col.PARALLEL_MIN_BYTES
        if not SPLIT or not any(isinstance(a, np.ndarray) and a.nbytes >= limit for a in args):
            return ufunc(*args)  # the common case, decided in about a microsecond
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        dtype = arrays[0].dtype
        if (
            dtype.kind != "f"
            or any(a.dtype != dtype for a in arrays)
            or any(not isinstance(a, np.ndarray) and type(a) not in (float, int) for a in args)
        ):
            return ufunc(*args)
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        axis = next((i for i, size in enumerate(shape) if size >= workers), None)
        if axis is None:
            return ufunc(*args)
        out = np.empty(shape, dtype=dtype)
        bounds = [shape[axis] * k // workers for k in range(workers + 1)]

        def run(slabs: Iterable) -> None:
            for lo, hi in slabs:
                operands = [_slab(a, axis, len(shape), lo, hi) for a in args]
                ufunc(*operands, out=_slab(out, axis, len(shape), lo, hi))

        im2col.run_in_parts(run, list(zip(bounds, bounds[1:])), out.nbytes, workers)
        return out

    return kernel


def sum_rows(matrix: Any, ones: Any, workers: int) -> Any:
    """The column sums of a C-ordered 2-d ``matrix`` (``ones``: at least as many ones as rows).

    Big matrices add ``SUM_PARTS`` fixed slabs of rows (one matrix-vector product each, on
    threads when ``workers > 1``), then the partial sums in order; small ones take one product.
    """
    rows = matrix.shape[0]
    if matrix.nbytes < im2col.PARALLEL_MIN_BYTES or rows < SUM_PARTS:
        return np.dot(ones[:rows], matrix)
    workers = workers if SPLIT else 1  # the same slabs on one thread: the same bits
    bounds = [rows * k // SUM_PARTS for k in range(SUM_PARTS + 1)]
    slabs = list(enumerate(zip(bounds, bounds[1:])))
    partials: list[Any] = [None] * SUM_PARTS

    def run(items: Iterable) -> None:
        for index, (lo, hi) in items:
            partials[index] = np.dot(ones[: hi - lo], matrix[lo:hi])

    im2col.run_in_parts(run, slabs, matrix.nbytes, workers)
    total = partials[0]
    for part in partials[1:]:
        total = total + part
    return total
