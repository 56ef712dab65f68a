"""Seeded epoch order and batch indexing shared by the image iterators."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

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


class BatchIterator:
    """Base of the image iterators: a seeded sample order per epoch, ``len`` and ``next``.

    A subclass sets ``n`` (samples), ``batch_size``, ``shuffle`` and ``seed``, calls
    ``_start_epochs`` and defines ``it[i]`` (batch ``i`` of the current epoch, in the order
    ``index_array``) and ``_no_batch_message``.
    """

    n: int
    batch_size: int
    shuffle: bool
    seed: int

    def _start_epochs(self) -> None:
        self.epoch = 0
        self._next_batch = 0
        self.index_array = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        return epoch_order(self.n, self.shuffle, self.seed, self.epoch)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        return batch_count(self.n, self.batch_size)

    def _no_batch_message(self) -> str:
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        """Start the next epoch: a new order when ``shuffle`` (from ``seed`` and the epoch)."""
        self.epoch += 1
        self._next_batch = 0
        self.index_array = self._epoch_order()

    def reset(self) -> None:
        """Make ``next()`` start again from the first batch of the current epoch."""
        self._next_batch = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        """The next batch; after the last batch of an epoch a new epoch starts."""
        if len(self) == 0:
            raise ValueError(self._no_batch_message())
        if self._next_batch >= len(self):
            self.on_epoch_end()
        batch = self[self._next_batch]
        self._next_batch += 1
        return batch

    def next(self) -> Any:
        """Keras 2 spelling of ``next(iterator)``."""
        return self.__next__()
