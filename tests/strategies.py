"""Hypothesis strategies shared by the property tests: shapes, arrays and conv/pool configs."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_SIDE = 4  # keep arrays small: finite differences cost two calls per element


def shapes(min_dims: int = 1, max_dims: int = 3, max_side: int = MAX_SIDE) -> st.SearchStrategy:
    """Array shapes with every side in ``[1, max_side]``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def float_arrays(
    shape: tuple | st.SearchStrategy,
    low: float = -3.0,
    high: float = 3.0,
    dtype: str = "float64",
) -> st.SearchStrategy:
    """Finite float arrays of ``shape`` with values in ``[low, high]``."""
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


def array_of_rank(rank: int, low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    """A float64 array of exactly ``rank`` dimensions."""
    return float_arrays(shapes(rank, rank), low, high)


@st.composite
def broadcast_pair(draw: st.DrawFn, rank: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 arrays of rank ``rank`` whose shapes broadcast (sizes 1 mixed in)."""
    full = draw(shapes(rank, rank))
    left = tuple(draw(st.sampled_from([d, 1])) for d in full)
    right = tuple(draw(st.sampled_from([d, 1])) for d in full)
    return draw(float_arrays(left)), draw(float_arrays(right))


class ConvConfig(NamedTuple):
    """One convolution: input and kernel arrays plus strides and padding."""

    x: np.ndarray
    kernel: np.ndarray
    strides: tuple[int, int]
    padding: str

    @property
    def key(self) -> tuple:
        """What a compiled step depends on (the batch size may vary)."""
        return ("conv", self.x.shape[1:], self.kernel.shape, self.strides, self.padding)


class PoolConfig(NamedTuple):
    """One pooling: input array plus window, strides, padding and mode."""

    x: np.ndarray
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    padding: str
    pool_mode: str

    @property
    def key(self) -> tuple:
        """What a compiled step depends on (the batch size may vary)."""
        return (
            "pool",
            self.x.shape[1:],
            self.pool_size,
            self.strides,
            self.padding,
            self.pool_mode,
        )


# A few fixed geometries (so each backend compiles each once; Theano compiles are slow):
# (height, width, kernel shape (kh, kw, in, out), strides, padding)
CONV_GEOMETRIES = [
    (5, 6, (3, 2, 2, 2), (1, 1), "valid"),
    (5, 5, (3, 3, 2, 1), (2, 2), "same"),
    (4, 5, (2, 3, 2, 2), (2, 1), "same"),
    (6, 4, (1, 1, 2, 1), (2, 2), "valid"),
]
# (height, width, pool size, strides, padding, mode)
POOL_GEOMETRIES = [
    (4, 6, (2, 2), (2, 2), "valid", "max"),
    (5, 5, (3, 3), (2, 2), "same", "max"),
    (5, 4, (2, 2), (1, 1), "valid", "avg"),
    (5, 5, (3, 2), (2, 3), "same", "avg"),
]


@st.composite
def conv_configs(draw: st.DrawFn) -> ConvConfig:
    """A convolution geometry from ``CONV_GEOMETRIES`` with a drawn batch and values."""
    height, width, kernel_shape, strides, padding = draw(st.sampled_from(CONV_GEOMETRIES))
    batch = draw(st.integers(1, 2))
    x = draw(float_arrays((batch, height, width, kernel_shape[2]), -1.0, 1.0))
    kernel = draw(float_arrays(kernel_shape, -1.0, 1.0))
    return ConvConfig(x, kernel, strides, padding)


@st.composite
def pool_configs(draw: st.DrawFn, channels: int = 2) -> PoolConfig:
    """A pooling geometry from ``POOL_GEOMETRIES`` with distinct values (no ties in windows)."""
    height, width, pool_size, strides, padding, mode = draw(st.sampled_from(POOL_GEOMETRIES))
    batch = draw(st.integers(1, 2))
    size = batch * height * width * channels
    order = draw(st.permutations(range(size)))  # well-separated values: no two cells tie
    x = (np.array(order, dtype=np.float64) / size * 4.0 - 2.0).reshape(
        batch, height, width, channels
    )
    return PoolConfig(x, pool_size, strides, padding, mode)


@st.composite
def arrays_with_specials(
    draw: st.DrawFn, shape: tuple | st.SearchStrategy, dtype: str = "float32"
) -> np.ndarray:
    """Arrays of ``shape`` where some cells (at least one) hold NaN, inf or -inf.

    The other cells are finite and normal: tensorflow flushes subnormals to zero.
    """
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    finite = st.floats(-3.0, 3.0, allow_nan=False, allow_subnormal=False, width=32)
    array = draw(hnp.arrays(np.dtype(dtype), shape, elements=finite))
    flat = array.reshape(-1)
    cells = st.integers(0, flat.size - 1)
    for index in draw(st.lists(cells, min_size=1, max_size=max(1, flat.size // 2))):
        flat[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return array


# Values of the wrong type or size for a config field: what the config fuzzers write. The
# integers are small, or so large that a layer sized by them passes minidl's 16 GiB weight
# bound (refused before allocating); sizes in between are legal and would really allocate
# gigabytes (minutes, or the machine's memory), which is not what the fuzzers test.
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**12), 2**12),
    st.integers(2**34, 2**40),
    st.integers(-(2**40), -(2**34)),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)
