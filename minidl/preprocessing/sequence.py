"""Padding of variable-length sequences (Keras 2's ``keras.preprocessing.sequence``).

>>> pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist()
[[2, 3], [0, 4]]
>>> pad_sequences([[1, 2, 3], [4]], padding="post", truncating="post").tolist()
[[1, 2, 3], [4, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pad_sequences(
    sequences: Sequence[Sequence[Any]],
    maxlen: int | None = None,
    dtype: str = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0.0,
) -> np.ndarray:
    """Pad (or cut) every sequence to ``maxlen``: an array ``(len(sequences), maxlen, ...)``.

    Args:
        sequences: a list of sequences (of numbers, or of equally shaped arrays).
        maxlen: target length; the longest sequence's length when None.
        dtype: dtype of the result.
        padding: ``"pre"`` pads at the start, ``"post"`` at the end.
        truncating: ``"pre"`` drops values from the start of longer sequences, ``"post"``
            from the end.
        value: the padding value.
    """
    for name, choice in (("padding", padding), ("truncating", truncating)):
        if choice not in ("pre", "post"):
            raise ValueError(f"`{name}` must be 'pre' or 'post'. Received: {name}={choice!r}")
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"`sequences` must be a list of sequences. Received: {sequences!r}")
    lengths = []
    for index, seq in enumerate(sequences):
        if not hasattr(seq, "__len__"):
            raise ValueError(
                "`sequences` must be a list of sequences (lists or arrays). "
                f"Received: {seq!r} at index {index}"
            )
        lengths.append(len(seq))
    if maxlen is None:
        maxlen = max(lengths, default=0)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, int | np.integer) or maxlen < 0:
        raise ValueError(f"`maxlen` must be a non-negative integer. Received: maxlen={maxlen!r}")
    sample_shape: tuple[int, ...] = ()
    for seq in sequences:
        if len(seq):
            sample_shape = np.asarray(seq).shape[1:]
            break
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.dtype(dtype) == object
    if isinstance(value, str) and not is_text:
        raise ValueError(
            f"`dtype` {dtype} is not compatible with the padding value {value!r}; use "
            f"dtype=object for text. Received: value={value!r}"
        )
    out = np.full((len(sequences), int(maxlen), *sample_shape), value, dtype=dtype)
    for index, seq in enumerate(sequences):
        if not len(seq) or not maxlen:
            continue
        kept = np.asarray(seq[-maxlen:] if truncating == "pre" else seq[:maxlen], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"Every element of a sequence must have the shape {sample_shape} of the first "
                f"non-empty sequence's elements. Received: {kept.shape[1:]} in sequence {index}"
            )
        if padding == "post":
            out[index, : len(kept)] = kept
        else:
            out[index, -len(kept) :] = kept
    return out
