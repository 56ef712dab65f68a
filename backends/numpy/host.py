"""``numpy_function``: a host callback as one graph op (no gradient)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .graph import Node, as_node, register, to_numpy, xp


def numpy_function(fn: Callable[..., Any], inputs: Sequence[Any], shape: tuple, dtype: str) -> Node:
    """Run the NumPy function ``fn`` on the values of ``inputs`` each time a compiled step runs."""
    nodes = tuple(as_node(value) for value in inputs)
    shape = tuple(None if d is None else int(d) for d in shape)
    return Node("numpy_function", nodes, shape, np.dtype(dtype), {"fn": fn})


# ``view``: fn may return an array it keeps (or one of its inputs), so the lowering passes
# never write into the result in place nor hand it to the caller without a copy
@register("numpy_function", view=True, differentiable=False)
def _prepare_numpy_function(node: Node) -> Callable[..., Any]:
    fn, dtype = node.attrs["fn"], node.dtype

    def run(*arrays: Any) -> Any:
        result = fn(*[to_numpy(a) for a in arrays])
        return xp.asarray(np.asarray(result, dtype=dtype))

    return run
