"""Seeded epoch order and batch indexing shared by the image iterators."""

from __future__ import annotations

import math

import numpy as np


def epoch_order(samples: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """The sample order of ``epoch``: ``0..samples-1``, or a permutation keyed by seed and epoch.

    >>> epoch_order(4, False, 0, 3).tolist()
    [0, 1, 2, 3]
    >>> sorted(epoch_order(4, True, 7, 1).tolist())
    [0, 1, 2, 3]
    """
    if not shuffle:
        return np.arange(samples)
    return np.random.default_rng([seed, epoch]).permutation(samples)


def batch_count(samples: int, batch_size: int) -> int:
    """Number of batches per epoch (the last one may be short)."""
    return math.ceil(samples / batch_size)


def batch_index(index: int, count: int) -> int:
    """``index`` (negative counts from the end) as ``0..count-1``; ``IndexError`` past either end.

    >>> batch_index(-1, 3)
    2
    """
    if not -count <= index < count:
        raise IndexError(
            f"Batch index out of range: this iterator has {count} batches. Received: {index}"
        )
    return index % count
