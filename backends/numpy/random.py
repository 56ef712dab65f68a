"""Dropout and random tensors: their spec entries (no gradients: randomness is a constant)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import check_dropout_rate
from .graph import Node, as_node, float_dtype, xp
from .spec import forward


def _generator(seed: int | None) -> Any:
    return np.random.default_rng(seed)


def dropout(x: Any, rate: float, seed: int | None = None) -> Node:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    x = as_node(x)
    rate = check_dropout_rate(rate)
    if rate == 0.0:
        return x
    attrs = {"rate": rate, "rng": _generator(seed)}
    mask = Node("dropout_mask", (x,), x.shape, float_dtype(x.dtype), attrs)
    return x * mask


@forward("dropout_mask", differentiable=False)
def _prepare_dropout_mask(node: Node) -> Any:
    rng, rate, dtype = node.attrs["rng"], node.attrs["rate"], node.dtype
    scale = dtype.type(1.0 / (1.0 - rate))
    sample_dtype = dtype if dtype in (np.float32, np.float64) else np.float64

    def dropout_mask(x: Any) -> Any:
        keep = rng.random(x.shape, dtype=sample_dtype) >= rate
        mask = keep.astype(dtype)
        mask *= scale
        return xp.asarray(mask)

    return dropout_mask


def _static_shape(shape: Any) -> tuple[int, ...]:
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise ValueError(f"Random tensors need a fully known shape. Received: shape={dims}")
    return tuple(int(d) for d in dims)


def random_uniform(
    shape: Any,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Node:
    """A tensor of uniform samples with static ``shape``, fresh on every call of a step."""
    attrs = {"low": float(minval), "high": float(maxval), "rng": _generator(seed)}
    return Node("random_uniform", (), _static_shape(shape), dtype or "float32", attrs)


def random_normal(
    shape: Any,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Node:
    """A tensor of normal samples with static ``shape``, fresh on every call of a step."""
    attrs = {"mean": float(mean), "stddev": float(stddev), "rng": _generator(seed)}
    return Node("random_normal", (), _static_shape(shape), dtype or "float32", attrs)


@forward("random_uniform", differentiable=False)
def _prepare_random_uniform(node: Node) -> Any:
    rng, shape, dtype = node.attrs["rng"], node.shape, node.dtype
    low, high = node.attrs["low"], node.attrs["high"]
    return lambda: xp.asarray(rng.uniform(low, high, shape).astype(dtype))


@forward("random_normal", differentiable=False)
def _prepare_random_normal(node: Node) -> Any:
    rng, shape, dtype = node.attrs["rng"], node.shape, node.dtype
    mean, stddev = node.attrs["mean"], node.attrs["stddev"]
    return lambda: xp.asarray(rng.normal(mean, stddev, shape).astype(dtype))
