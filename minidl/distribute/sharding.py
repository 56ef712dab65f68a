"""Which samples each worker reads: its part of every global batch.

A global batch of ``m`` samples is split into ``size`` consecutive parts whose sizes differ by
at most one (the first ``m % size`` workers take one more), so every worker runs the same
number of steps even when the data set does not divide evenly: the last, shorter global batch
is split the same way. When it holds fewer samples than there are workers, a worker left
without a sample runs its step on one sample with weight zero, so that it still takes part in
the all-reduce, and the gradient average counts only real samples.

>>> split_sizes(10, 3).tolist()
[4, 3, 3]
>>> shard_indices(10, rank=1, size=3).tolist()
[4, 5, 6]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def split_sizes(total: int, parts: int) -> np.ndarray:
    """Sizes of ``parts`` consecutive pieces of ``total`` items, differing by at most one."""
    return np.array([total // parts + (i < total % parts) for i in range(parts)], np.int64)


def shard_bounds(total: int, rank: int, size: int) -> tuple[int, int]:
    """``(start, stop)`` of worker ``rank``'s consecutive piece of ``total`` items."""
    base, extra = divmod(total, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard_indices(num_samples: int, rank: int, size: int) -> np.ndarray:
    """Indices of worker ``rank``'s consecutive block of a data set (for per-worker files)."""
    start, stop = shard_bounds(num_samples, rank, size)
    return np.arange(start, stop)


def num_samples(data: Any) -> int:
    """Length of an array, or of the first array of a list or dict of them."""
    if isinstance(data, dict):
        return num_samples(next(iter(data.values())))
    if isinstance(data, list):
        return num_samples(data[0])
    return len(data)


def _rows(data: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of an array, a memory map, or any indexable data set (h5py: sorted).

    Lists and dicts of arrays (one per model input or output) keep their structure.
    """
    if data is None:
        return None
    if isinstance(data, dict):
        return {key: _rows(value, index) for key, value in data.items()}
    if isinstance(data, list):
        return [_rows(value, index) for value in data]
    if isinstance(data, np.ndarray):
        return data[index]
    return np.asarray(data[np.sort(index).tolist()])  # h5py needs increasing indices


class GlobalBatchShards:
    """A Sequence of this worker's part of each global batch of array data.

    Batches are ``(x, y, sample_weight)``; only this worker's rows are read (a memory map or an
    h5py data set is never loaded whole).

    Args:
        x, y, sample_weight: the whole data set, the same on every worker.
        batch_size: the global batch size.
        rank, size: this worker and the number of workers.
        draw_order: called at the start of every epoch; returns the epoch's order of the
            samples (the same on every worker) or None to keep them in order.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        batch_size: int,
        rank: int,
        size: int,
        draw_order: Callable[[], np.ndarray | None],
    ) -> None:
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.num_samples = num_samples(x)
        self.batch_size = int(batch_size)
        self.rank, self.size = rank, size
        self.draw_order = draw_order
        self._order: np.ndarray | None = None
        self._drawn = False

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def global_batch(self, index: int) -> tuple[int, int]:
        """``(start, stop)`` positions of global batch ``index`` in the epoch's order."""
        start = index * self.batch_size
        return start, min(start + self.batch_size, self.num_samples)

    def local_count(self, index: int) -> int:
        """How many real samples this worker holds in global batch ``index``."""
        start, stop = self.global_batch(index)
        low, high = shard_bounds(stop - start, self.rank, self.size)
        return high - low

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        if not self._drawn:
            self._order, self._drawn = self.draw_order(), True
        start, stop = self.global_batch(index)
        lo, hi = shard_bounds(stop - start, self.rank, self.size)
        positions = np.arange(start + lo, start + hi)
        placeholder = positions.size == 0
        if placeholder:  # no real sample here: one weightless sample keeps the step in step
            positions = np.arange(start, start + 1)
        rows = positions if self._order is None else self._order[positions]
        y = _rows(self.y, rows)
        weights = _rows(self.sample_weight, rows)
        if placeholder:  # weight zero for every output
            zeros = np.zeros(len(rows), dtype="float32")
            if isinstance(y, dict):
                weights = {key: zeros for key in y}
            else:
                weights = [zeros] * len(y) if isinstance(y, list) else zeros
        return _rows(self.x, rows), y, weights

    def on_epoch_end(self) -> None:
        """The next epoch draws a new order."""
        self._drawn = False
