"""``numpy_function``: a host callback through ``tf.numpy_function`` (stateful, no gradient)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._runtime import tf


def numpy_function(fn: Callable[..., Any], inputs: Sequence[Any], shape: tuple, dtype: str) -> Any:
    """Run the NumPy function ``fn`` on the values of ``inputs`` each time a compiled step runs."""
    out_dtype = np.dtype(dtype)

    def call(*arrays: Any) -> np.ndarray:
        return np.asarray(fn(*arrays), dtype=out_dtype)

    tensors = [tf.convert_to_tensor(x) for x in inputs]
    result = tf.numpy_function(call, tensors, tf.as_dtype(out_dtype), stateful=True)
    result.set_shape([None if d is None else int(d) for d in shape])
    return tf.stop_gradient(result)
