"""The ``Sequence`` base class: a data set that ``fit`` reads batch by batch by index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class Sequence:
    """Base class for batch-indexed data (Keras 2's ``keras.utils.Sequence``).

    Subclasses define ``__len__`` (batches per epoch) and ``__getitem__(index)`` returning
    ``(x, y)`` or ``(x, y, sample_weight)``; ``on_epoch_end`` runs after every epoch.

    >>> class Squares(Sequence):
    ...     def __len__(self):
    ...         return 2
    ...     def __getitem__(self, index):
    ...         return [index], [index * index]
    >>> list(Squares())
    [([0], [0]), ([1], [1])]
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")

    def on_epoch_end(self) -> None:
        """Called after each epoch (shuffle here, for example)."""

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]
