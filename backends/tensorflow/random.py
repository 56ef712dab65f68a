"""Random tensors and dropout: fresh samples on every run, a sequence fixed by the seed.

Inside a traced step each random op owns a counter variable: every call of the compiled step
increments it and draws with TensorFlow's stateless samplers from the key ``(seed, counter)``.
So a compiled step sees new samples on each call, and the same seed replays the same sequence
in every process (XLA draws a different, equally fixed, sequence from the same keys). Eager
calls (outside a step) count per seed in Python, so repeated eager calls with one seed also
give fresh, reproducible samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._runtime import floatx, tf
from .variables import to_tensor, variable


def _resolve_seed(seed: int | None) -> int:
    if seed is None:
        return int(np.random.randint(0, 2**31 - 1))
    return int(seed)


_eager_counts: dict[int, int] = {}


def _next_key(seed: int | None) -> Any:
    """A new ``(seed, counter)`` stateless key; the counter advances each time the op runs."""
    seed = _resolve_seed(seed)
    if tf.executing_eagerly():
        _eager_counts[seed] = _eager_counts.get(seed, 0) + 1
        return tf.constant([seed, _eager_counts[seed]], tf.int64)
    counter = variable(np.int64(0), dtype="int64", name="random_counter")
    step = tf.convert_to_tensor(counter.assign_add(1))
    return tf.stack([tf.constant(seed, tf.int64), step])


def _dtype(dtype: str | None) -> Any:
    return tf.as_dtype(dtype or floatx())


def random_uniform(
    shape: tuple,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Any:
    """A tensor of uniform samples with static ``shape``, fresh on every call of a step."""
    return tf.random.stateless_uniform(
        [int(d) for d in shape],
        _next_key(seed),
        minval=minval,
        maxval=maxval,
        dtype=_dtype(dtype),
        alg="philox",
    )


def random_normal(
    shape: tuple,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Any:
    """A tensor of normal samples with static ``shape``, fresh on every call of a step."""
    return tf.random.stateless_normal(
        [int(d) for d in shape],
        _next_key(seed),
        mean=mean,
        stddev=stddev,
        dtype=_dtype(dtype),
        alg="philox",
    )


def dropout(x: Any, rate: float, seed: int | None = None) -> Any:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    x = to_tensor(x)
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    if rate == 0.0:
        return x
    draws = tf.random.stateless_uniform(tf.shape(x), _next_key(seed), dtype=x.dtype, alg="philox")
    keep = tf.cast(draws >= rate, x.dtype)
    return x * keep * tf.constant(1.0 / (1.0 - rate), x.dtype)
