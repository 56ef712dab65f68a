"""Seeded random tensors and dropout on PyTensor (generator states advanced by each step)."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pytensor.tensor as pt
import pytensor.tensor.random as ptr

from minidl.backends.errors import check_dropout_rate
from minidl.backends.theano.variables import _FLOATX, Shape, as_tensor

_seed_source = np.random.default_rng()

# Each random draw made while tracing: its generator state (a shared variable) -> the state
# after the draw.  ``function`` adds these as updates, so every call of a step draws afresh.
PENDING_RNG_UPDATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _draw(seed: int | None, method: str, *args: Any, **kwargs: Any) -> Any:
    """Sample by ``method`` from a new generator whose state the compiled step advances."""
    if seed is None:
        seed = int(_seed_source.integers(2**31 - 1))
    state = ptr.shared_rng(seed=int(seed))
    next_state, sample = getattr(state, method)(*args, **kwargs)
    PENDING_RNG_UPDATES[state] = next_state
    return sample


def _float_dtype(dtype: str | None) -> str:
    return str(np.dtype(dtype or _FLOATX))


def random_uniform(
    shape: Shape,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Any:
    """A tensor of uniform samples with static ``shape``, fresh on every call of a step."""
    kind = _float_dtype(dtype)
    low, high = np.asarray(minval, kind), np.asarray(maxval, kind)
    sample = _draw(seed, "uniform", low, high, size=tuple(shape), dtype=kind)
    return pt.cast(sample, kind)


def random_normal(
    shape: Shape,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Any:
    """A tensor of normal samples with static ``shape``, fresh on every call of a step."""
    kind = _float_dtype(dtype)
    loc, scale = np.asarray(mean, kind), np.asarray(stddev, kind)
    sample = _draw(seed, "normal", loc, scale, size=tuple(shape), dtype=kind)
    return pt.cast(sample, kind)


def dropout(x: Any, rate: float, seed: int | None = None) -> Any:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    rate = check_dropout_rate(rate)
    x = as_tensor(x)
    if rate == 0.0:
        return x
    kind = x.dtype
    draws = _draw(seed, "uniform", size=x.shape, dtype=kind)
    keep = pt.ge(draws, np.asarray(rate, dtype=kind))
    return pt.switch(keep, x * np.asarray(1.0 / (1.0 - rate), dtype=kind), np.asarray(0, kind))
