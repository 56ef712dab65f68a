"""``numpy_function``: a host callback as a PyTensor ``Op`` whose ``perform`` calls it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from minidl.backends.theano.variables import as_tensor


class NumpyFunction(Op):
    """Calls a Python function on its inputs' values (Python ``perform``; no gradient)."""

    __props__ = ("fn", "shape", "dtype")

    def __init__(self, fn: Callable[..., Any], shape: tuple, dtype: str) -> None:
        self.fn = fn
        self.shape = shape
        self.dtype = dtype

    def make_node(self, *inputs: Any) -> Apply:
        output = pt.tensor(dtype=self.dtype, shape=self.shape)
        return Apply(self, [as_tensor(x) for x in inputs], [output])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        result = self.fn(*inputs)
        output_storage[0][0] = np.asarray(result, dtype=self.dtype)

    def grad(self, inputs: Sequence[Any], output_grads: Sequence[Any]) -> list[Any]:
        return [pt.zeros_like(x) for x in inputs]


def numpy_function(fn: Callable[..., Any], inputs: Sequence[Any], shape: tuple, dtype: str) -> Any:
    """Run the NumPy function ``fn`` on the values of ``inputs`` each time a compiled step runs."""
    shape = tuple(None if d is None else int(d) for d in shape)
    return NumpyFunction(fn, shape, str(np.dtype(dtype)))(*inputs)
