"""Shape ops (reshape, transpose, padding, ...) and ``one_hot`` on TensorFlow tensors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import check_same_dtype
from ._runtime import floatx, tf
from .variables import is_tensor, to_tensor


def reshape(x: Any, shape: tuple) -> Any:
    """Reshape to ``shape``, a tuple of ints where one entry may be -1."""
    return tf.reshape(to_tensor(x), [int(d) for d in shape])


def batch_flatten(x: Any) -> Any:
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""
    x = to_tensor(x)
    rest = x.shape[1:]
    if rest.is_fully_defined():
        return tf.reshape(x, (-1, math.prod(rest.as_list())))
    return tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute axes like ``numpy.transpose`` (reverse them when ``axes`` is None)."""
    return tf.transpose(to_tensor(x), perm=None if axes is None else list(axes))


def expand_dims(x: Any, axis: int = -1) -> Any:
    """Insert a length-1 axis at ``axis``."""
    return tf.expand_dims(to_tensor(x), axis)


def squeeze(x: Any, axis: int) -> Any:
    """Remove the length-1 axis ``axis``."""
    return tf.squeeze(to_tensor(x), axis=[axis])


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Any:
    """Join tensors along an existing axis."""
    dtypes = [t.dtype.name for t in tensors if is_tensor(t)]
    for dtype in dtypes[1:]:
        check_same_dtype("concatenate", dtypes[0], dtype)
    return tf.concat([to_tensor(t) for t in tensors], axis=axis)


def spatial_2d_padding(x: Any, padding: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """Zero-pad an NHWC tensor: ``((top, bottom), (left, right))``."""
    (top, bottom), (left, right) = padding
    return tf.pad(to_tensor(x), [[0, 0], [top, bottom], [left, right], [0, 0]])


def one_hot(indices: Any, num_classes: int) -> Any:
    """Integer tensor of shape ``s`` -> ``floatx()`` tensor of shape ``s + (num_classes,)``."""
    indices = to_tensor(indices)
    if indices.dtype not in (tf.int32, tf.int64, tf.uint8):
        indices = tf.cast(indices, tf.int64)
    return tf.one_hot(indices, int(num_classes), dtype=floatx())
