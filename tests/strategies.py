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


class PoolConfig(NamedTuple):
    """One pooling: input array plus window, strides, padding and mode."""

    x: np.ndarray
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    padding: str
    pool_mode: str


@st.composite
def conv_configs(draw: st.DrawFn, max_side: int = 6, channels: int = 2) -> ConvConfig:
    """A small NHWC input, an HWIO kernel that fits it, strides and padding."""
    padding = draw(st.sampled_from(["valid", "same"]))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kh, kw = draw(st.integers(1, min(3, height))), draw(st.integers(1, min(3, width)))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    batch = draw(st.integers(1, 2))
    out_channels = draw(st.integers(1, 2))
    x = draw(float_arrays((batch, height, width, channels), -1.0, 1.0))
    kernel = draw(float_arrays((kh, kw, channels, out_channels), -1.0, 1.0))
    return ConvConfig(x, kernel, strides, padding)


@st.composite
def pool_configs(draw: st.DrawFn, max_side: int = 6, channels: int = 2) -> PoolConfig:
    """A small NHWC input with distinct values (no ties) and a pooling window that fits."""
    padding = draw(st.sampled_from(["valid", "same"]))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    ph, pw = draw(st.integers(1, min(3, height))), draw(st.integers(1, min(3, width)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    batch = draw(st.integers(1, 2))
    size = batch * height * width * channels
    # a permutation of well-separated values: no two cells of a window tie
    order = draw(st.permutations(range(size)))
    x = (np.array(order, dtype=np.float64) / size * 4.0 - 2.0).reshape(
        batch, height, width, channels
    )
    mode = draw(st.sampled_from(["max", "avg"]))
    return PoolConfig(x, (ph, pw), strides, padding, mode)
