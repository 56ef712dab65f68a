"""Turn what users pass to ``fit``/``evaluate``/``predict`` into batches of NumPy arrays.

Three kinds of input are accepted:

* arrays (NumPy arrays, lists of numbers, pandas objects) with ``y`` and ``sample_weight``;
* a Keras-``Sequence``-like object: ``len(seq)`` batches, ``seq[i]`` returns ``(x, y)``,
  ``(x, y, sample_weight)`` or ``x``; ``seq.on_epoch_end()`` is called after each epoch;
* a plain iterator or generator yielding those tuples (``steps`` needed unless it has a length).

Every adapter yields ``(x, y, sample_weight)`` tuples (``y`` and ``sample_weight`` may be None).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

logger = logging.getLogger("minidl")

Batch = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def is_array_like(data: Any) -> bool:
    """True for arrays, pandas objects, lists/tuples of numbers or arrays, dicts of arrays."""
    return isinstance(data, (np.ndarray, list, tuple, dict, int, float)) or hasattr(
        data, "__array__"
    )


def take(data: Any, index: Any) -> Any:
    """Rows ``index`` of an array, of each array of a list, or None."""
    if data is None:
        return None
    if isinstance(data, list):
        return [array[index] for array in data]
    return data[index]


def _length(data: Any) -> int:
    return len(data[0]) if isinstance(data, list) else len(data)


def is_sequence_like(data: Any) -> bool:
    """True for Keras-Sequence-like objects: indexable batches with a length."""
    return hasattr(data, "__len__") and hasattr(data, "__getitem__") and not is_array_like(data)


def is_iterator_like(data: Any) -> bool:
    """True for generators and other iterators."""
    return hasattr(data, "__next__") and hasattr(data, "__iter__")


def as_numeric_array(data: Any, what: str) -> np.ndarray:
    """Return ``data`` as a numeric NumPy array, or raise TypeError for strings and objects."""
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    array = np.asarray(data)
    if array.dtype.kind in "USO":
        if array.dtype.kind == "O":
            try:
                return array.astype("float32")
            except (TypeError, ValueError):
                pass
        raise TypeError(
            f"`{what}` must hold numbers. Received: an array of dtype {array.dtype} "
            f"(e.g. {array.ravel()[:3].tolist()}). Encode text labels as integers first, "
            "e.g. with sklearn.preprocessing.LabelEncoder."
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{what}` must hold real numbers. Received: dtype {array.dtype}")
    return array


def check_same_length(arrays: dict[str, np.ndarray | None]) -> int:
    """Return the common number of samples, or raise the Keras 'cardinality' ValueError."""
    sizes = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{name} sizes: {size}" for name, size in sizes.items())
        raise ValueError(
            f"Data cardinality is ambiguous: {detail}. Make sure all arrays contain the same "
            "number of samples."
        )
    return next(iter(sizes.values()))


def split_validation(
    x: np.ndarray, y: np.ndarray | None, sample_weight: np.ndarray | None, fraction: float
) -> tuple[tuple, tuple]:
    """Keep the last ``fraction`` of the samples (before any shuffling) for validation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"`validation_split` must be a float between 0 and 1. "
            f"Received: validation_split={fraction}"
        )
    count = _length(x)
    split_at = int(count * (1.0 - fraction))
    if split_at == 0 or split_at == count:
        raise ValueError(
            f"validation_split={fraction} leaves no samples for training or for validation "
            f"with {count} samples. Received: validation_split={fraction}"
        )

    def part(a: Any, lo: int, hi: int | None) -> Any:
        return take(a, slice(lo, hi))

    train = (part(x, 0, split_at), part(y, 0, split_at), part(sample_weight, 0, split_at))
    val = (part(x, split_at, None), part(y, split_at, None), part(sample_weight, split_at, None))
    return train, val


def unpack_batch(batch: Any, source: str) -> Batch:
    """Split what a Sequence or generator returned into ``(x, y, sample_weight)``."""
    if isinstance(batch, tuple) and 1 <= len(batch) <= 3:
        parts = list(batch) + [None] * (3 - len(batch))
        return parts[0], parts[1], parts[2]
    if isinstance(batch, list) and len(batch) in (2, 3):
        if all(isinstance(part, np.ndarray) or part is None for part in batch):
            parts = list(batch) + [None] * (3 - len(batch))
            return parts[0], parts[1], parts[2]
    if batch is None:
        raise TypeError(f"{source} must yield (x, y[, sample_weight]) tuples. Received: None")
    return batch, None, None


class ArrayAdapter:
    """Batches of in-memory arrays, reshuffled every epoch when ``shuffle``."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        batch_size: int = 32,
        shuffle: bool = False,
        steps: int | None = None,
    ) -> None:
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.num_samples = _length(x)
        self.steps = steps
        self._stream: Iterator[Batch] | None = None

    def num_batches(self) -> int:
        if self.steps is not None:
            return self.steps
        return -(-self.num_samples // self.batch_size)

    def _one_pass(self) -> Iterator[Batch]:
        order = np.random.permutation(self.num_samples) if self.shuffle else None
        for start in range(0, self.num_samples, self.batch_size):
            if order is None:
                index: Any = slice(start, start + self.batch_size)
            else:
                index = order[start : start + self.batch_size]
            yield take(self.x, index), take(self.y, index), take(self.sample_weight, index)

    def _endless(self) -> Iterator[Batch]:
        while True:
            yield from self._one_pass()

    def epoch(self) -> Iterator[Batch]:
        """The batches of one epoch (``steps`` batches of an endless stream when given)."""
        if self.steps is None:
            yield from self._one_pass()
            return
        if self._stream is None:
            self._stream = self._endless()
        for _ in range(self.steps):
            yield next(self._stream)

    def on_epoch_end(self) -> None:
        """Nothing to do for arrays."""


class SequenceAdapter:
    """Batches from a Sequence-like object (its batch order shuffled when ``shuffle``)."""

    def __init__(self, sequence: Any, shuffle: bool = False, steps: int | None = None) -> None:
        self.sequence = sequence
        self.shuffle = shuffle
        length = len(sequence)
        if steps is not None and steps > length:
            raise ValueError(
                f"`steps` ({steps}) is larger than the number of batches of the Sequence "
                f"({length}). Received: steps={steps}"
            )
        self.steps = length if steps is None else int(steps)
        if self.steps < 1:
            raise ValueError(f"The Sequence has no batches. Received: len(sequence)={length}")
        self.num_samples = None

    def num_batches(self) -> int:
        return self.steps

    def epoch(self) -> Iterator[Batch]:
        order = np.random.permutation(len(self.sequence)) if self.shuffle else None
        for i in range(self.steps):
            index = int(order[i]) if order is not None else i
            yield unpack_batch(self.sequence[index], "A Sequence")

    def on_epoch_end(self) -> None:
        hook = getattr(self.sequence, "on_epoch_end", None)
        if callable(hook):
            hook()


class IteratorAdapter:
    """``steps`` batches per epoch drawn from one generator or iterator."""

    def __init__(self, iterator: Any, steps: int | None, what: str = "steps_per_epoch") -> None:
        if steps is None and hasattr(iterator, "__len__"):
            steps = len(iterator)
        if steps is None:
            raise ValueError(
                f"A generator or iterator has no length: pass `{what}` to say how many "
                f"batches make one epoch. Received: {what}=None"
            )
        if int(steps) < 1:
            raise ValueError(f"`{what}` must be a positive integer. Received: {what}={steps}")
        self.iterator = iterator
        self.steps = int(steps)
        self.num_samples = None
        self.exhausted = False

    def num_batches(self) -> int:
        return self.steps

    def epoch(self) -> Iterator[Batch]:
        for _ in range(self.steps):
            try:
                batch = next(self.iterator)
            except StopIteration:
                self.exhausted = True
                logger.warning(
                    "The input generator ran out of data before %d batches; training stops. "
                    "Make sure it can yield steps_per_epoch * epochs batches (e.g. loop forever).",
                    self.steps,
                )
                return
            yield unpack_batch(batch, "A generator")

    def on_epoch_end(self) -> None:
        """Nothing to do for generators."""


def make_adapter(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: int | None = 32,
    shuffle: bool = False,
    steps: int | None = None,
    steps_name: str = "steps_per_epoch",
) -> ArrayAdapter | SequenceAdapter | IteratorAdapter:
    """Choose the adapter for ``x`` (arrays, a Sequence, or an iterator).

    ``batch_size`` is already checked by the caller (``batches.check_batch_size``).
    """
    if is_array_like(x):
        x = as_numeric_array(x, "x")
        y = None if y is None else as_numeric_array(y, "y")
        return ArrayAdapter(x, y, sample_weight, batch_size or 32, shuffle, steps)
    if y is not None or sample_weight is not None:
        raise ValueError(
            "`y` and `sample_weight` must not be given when `x` is a Sequence or a generator "
            f"(it provides them). Received: x={type(x).__name__}, y={type(y).__name__}"
        )
    if is_sequence_like(x):
        return SequenceAdapter(x, shuffle, steps)
    if is_iterator_like(x) or hasattr(x, "__iter__"):
        return IteratorAdapter(iter(x), steps, steps_name)
    raise TypeError(
        "`x` must be a NumPy array, a Sequence (with __len__ and __getitem__) or a generator. "
        f"Received: {type(x).__name__}"
    )
