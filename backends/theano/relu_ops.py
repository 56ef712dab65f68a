"""A PyTensor Op for the plain ``relu`` whose gradient reads the output, not the input.

Written as ``switch(x <= 0, 0, x)`` PyTensor derives a gradient that needs ``x``, so every
activation keeps two arrays alive (the pre-activation and the output) and the forward pass
writes a new one; on VGG16 that fused C loop took 2-4x NumPy's in-place ``maximum``. ``Relu``
runs ``maximum(x, 0)`` (NaN stays NaN); its gradient ``relu_gradient(g, y)`` reads the slope
from the output ``y``, which is ``> 0`` exactly where ``x`` is and NaN exactly where ``x`` is:
the incoming gradient where ``y > 0``, NaN where ``y`` is NaN, an exact 0 elsewhere even for
an inf or NaN gradient (``backends.interface``). As ``x`` is then needed by nothing else, an
in-place rewrite lets ``Relu`` overwrite it whenever PyTensor's destroy handler finds that
safe. Used in the C and Python modes; NUMBA and JAX compile the graph form themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter


class Relu(Op):
    """``maximum(x, 0)``: NaN stays NaN, ``-0.0`` becomes ``0.0``; ``inplace`` overwrites x."""

    __props__ = ("inplace",)

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = bool(inplace)
        if self.inplace:
            self.destroy_map = {0: [0]}

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        return input_shapes

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        (x,) = inputs
        zero = x.dtype.type(0)
        outputs[0][0] = np.maximum(x, zero, out=x) if self.inplace else np.maximum(x, zero)

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        (y,), (g,) = outputs, output_grads
        return [relu_gradient(g, y)]


def relu_gradient(g: Any, y: Any) -> Any:
    """``g`` where relu's output ``y > 0``, NaN where ``y`` is NaN, an exact 0 elsewhere.

    Element-wise graph ops, which PyTensor fuses into one C loop (in place on ``g``) and
    differentiates itself (w.r.t. ``g``: the same pick; ``y`` gets no gradient).
    """
    zero = np.asarray(0, dtype=g.dtype)
    return pt.switch(pt.isnan(y), y, pt.switch(pt.gt(y, zero), g, zero))


@node_rewriter([Relu], inplace=True)
def relu_inplace(fgraph: Any, node: Apply) -> list | None:
    """Let ``Relu`` overwrite its input (PyTensor's destroy handler checks that it may)."""
    if node.op.inplace:
        return None
    return Relu(inplace=True)(*node.inputs).owner.outputs


optdb.register(
    "minidl_relu_inplace",
    WalkingGraphRewriter(relu_inplace, failure_callback=WalkingGraphRewriter.warn_inplace),
    "fast_run",
    "inplace",
    position=50.2,
)


def relu(x: Any) -> Any:
    """The ``Relu`` node of ``x``."""
    return Relu()(x)
