"""NumPy helpers for labels and features (Keras 2's ``keras.utils.np_utils``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_categorical(y: Any, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot encode integer class labels: shape ``y.shape + (num_classes,)``.

    A trailing axis of length 1 (labels shaped ``(n, 1)``) is dropped first, as in Keras 2.

    Args:
        y: integer class labels from 0 to ``num_classes - 1``, of any shape.
        num_classes: number of classes; ``max(y) + 1`` when None.
        dtype: dtype of the result.

    >>> to_categorical([[1], [0]], num_classes=3).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    labels = np.asarray(y)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(
                "`to_categorical` expects whole-number class labels. "
                f"Received: a float array holding {labels[labels != np.round(labels)][:3]!r}"
            )
    elif labels.dtype.kind not in "iub":
        raise TypeError(
            f"`to_categorical` expects integer class labels. Received: dtype {labels.dtype}"
        )
    labels = labels.astype("int64")
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.ravel()
    if flat.size and flat.min() < 0:
        raise ValueError(
            f"`to_categorical` expects labels >= 0. Received: a label of {int(flat.min())}"
        )
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise TypeError(f"`num_classes` must be an integer. Received: num_classes={num_classes!r}")
    elif flat.size and flat.max() >= num_classes:
        raise ValueError(
            f"`to_categorical` got a label of {int(flat.max())}, which needs more than "
            f"num_classes={num_classes} classes. Received: num_classes={num_classes}"
        )
    categorical = np.zeros((flat.size, int(num_classes)), dtype=dtype)
    categorical[np.arange(flat.size), flat] = 1
    return categorical.reshape(shape + (int(num_classes),))


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """Divide ``x`` by its ``order``-norm along ``axis`` (zero vectors are left as they are).

    >>> normalize([[1.0, 1.0], [0.0, 0.0]], order=1).tolist()
    [[0.5, 0.5], [0.0, 0.0]]
    """
    array = np.asarray(x)
    norms = np.atleast_1d(np.linalg.norm(array, order, axis))
    norms[norms == 0] = 1
    return array / np.expand_dims(norms, axis)
