"""Lowering passes (PyTensor rewrites) beside the graph the ops build: same numbers, fewer passes.

* ``fuse_conv_bias_relu``: a Conv2D layer computes ``conv2d -> add(bias) -> relu``; op by op,
  the bias and the relu are two more passes over the whole activation, while the convolution
  had every block of output rows in cache right after computing it. ``Relu(conv2d(x, k) + b)``
  (and ``conv2d(x, k) + b`` with no relu) becomes one ``Conv2DBiasRelu`` node whose kernel
  adds ``b`` and takes the relu on each block in place (``conv_kernels``' epilogue), when
  nobody else reads the convolution or the sum and ``b`` broadcasts along the channel axis.
  ``MINIDL_THEANO_FUSION=0`` switches it off.
* ``pooled_relu_slopes``: the relu slope of a gradient routed by max-pooling is taken at the
  pooled size, before routing (a quarter of the cells for 2x2 windows), instead of over the
  whole routed image. ``MINIDL_THEANO_POOLED_SLOPES=0`` switches it off.

Both run after gradients are built, on the compiled graph only (C mode; the numpy backend's
``fusion`` and ``pooled_slopes`` passes do the same); the switches are read when a step is
compiled, e.g. to check a wrong result against the graph without the pass.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.scalar import basic as ps
from pytensor.tensor.elemwise import Elemwise

from minidl.backends import conv_kernels, shapes
from minidl.backends.theano import conv_ops
from minidl.backends.theano.pool_ops import MaxPool2D, MaxPool2DGradient
from minidl.backends.theano.relu_ops import Relu, relu_gradient

SWITCH_ENV = "MINIDL_THEANO_FUSION"
POOLED_SLOPES_ENV = "MINIDL_THEANO_POOLED_SLOPES"


def enabled(switch: str = SWITCH_ENV) -> bool:
    """Whether the pass switched by the environment variable ``switch`` runs (not ``0``)."""
    return os.environ.get(switch, "1").strip() != "0"


class Conv2DBiasRelu(conv_ops.Conv2D):
    """``conv2d(x, kernel) + bias``, then ``relu`` when ``relu`` is set, in one kernel call.

    Only the fusion pass builds it, after gradients: it has no gradient of its own.
    """

    __props__ = ("strides", "padding", "window", "relu")

    def __init__(self, strides: tuple, padding: str, window: tuple, relu: bool) -> None:
        super().__init__(strides, padding, window)
        self.relu = bool(relu)

    def make_node(self, x: Any, kernel: Any, bias: Any) -> Apply:
        node = super().make_node(x, kernel)
        outputs = [out.type() for out in node.outputs]
        return Apply(self, [*node.inputs, pt.as_tensor_variable(bias)], outputs)

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, kernel, bias = inputs
        channels = bias.reshape(-1)  # (1, ..., 1, c) or (1, ..., 1, 1): along the channels
        zero = x.dtype.type(0)

        def bias_relu(block: np.ndarray) -> None:
            np.add(block, channels, out=block)
            if self.relu:
                np.maximum(block, zero, out=block)

        pads = shapes.spatial_padding(
            x.shape[1], x.shape[2], self.window, self.strides, self.padding
        )
        out = conv_kernels.conv2d_forward(
            x, kernel, self.strides, pads, conv_ops._scratch, epilogue=bias_relu
        )
        outputs[0][0] = out.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        return super().infer_shape(fgraph, node, input_shapes[:2])


def _only_reader(fgraph: Any, variable: Any) -> Any:
    """The one node reading ``variable``, or None (several readers, or a step output)."""
    clients = fgraph.clients.get(variable, [])
    if len(clients) != 1 or not isinstance(clients[0][0], Apply):
        return None
    return clients[0][0]


def _channel_bias(bias: Any, out: Any) -> bool:
    """Whether ``bias`` broadcasts along the channel axis of ``out`` (same dtype)."""
    shape = bias.type.shape
    if bias.dtype != out.dtype or bias.ndim != out.ndim or None in shape:
        return False
    return all(d == 1 for d in shape[:-1]) and shape[-1] in (1, out.type.shape[-1])


def _conv_and_bias(fgraph: Any, total: Any) -> tuple | None:
    """``(conv node, bias)`` when ``total`` is ``Conv2D(x, k) + b`` that may be fused."""
    node = total.owner
    if node is None or not isinstance(node.op, Elemwise) or len(node.inputs) != 2:
        return None
    if not isinstance(node.op.scalar_op, ps.Add):
        return None
    for conv, bias in (node.inputs, node.inputs[::-1]):
        owner = conv.owner
        if owner is None or type(owner.op) is not conv_ops.Conv2D:
            continue
        if total.type == conv.type and _only_reader(fgraph, conv) is node:
            if _channel_bias(bias, total):
                return owner, bias
    return None


def _fused(conv: Apply, bias: Any, relu: bool) -> Any:
    op = conv.op
    return Conv2DBiasRelu(op.strides, op.padding, op.window, relu)(*conv.inputs, bias)


@node_rewriter([Relu, Elemwise])
def fuse_conv_bias_relu(fgraph: Any, node: Apply) -> list | None:
    """``[Relu](Conv2D(x, k) + b)`` -> ``Conv2DBiasRelu(x, k, b)`` (see the module docstring)."""
    if not enabled():
        return None
    if isinstance(node.op, Relu):  # relu(conv + b): its input read by nobody else
        found = None if node.op.inplace else _conv_and_bias(fgraph, node.inputs[0])
        if found is None or _only_reader(fgraph, node.inputs[0]) is not node:
            return None
        return [_fused(*found, relu=True)]
    found = _conv_and_bias(fgraph, node.outputs[0])
    if found is None:
        return None
    reader = _only_reader(fgraph, node.outputs[0])
    if isinstance(getattr(reader, "op", None), Relu):  # left to the relu's own match
        return None
    return [_fused(*found, relu=False)]


optdb.register(
    "minidl_fuse_conv_bias_relu",
    WalkingGraphRewriter(fuse_conv_bias_relu),
    "fast_run",
    position=47.9,
)


def _op_of(variable: Any, kind: type) -> Apply | None:
    owner = variable.owner
    if (
        owner is None
        or not isinstance(owner.op, Elemwise)
        or not isinstance(owner.op.scalar_op, kind)
    ):
        return None
    return owner


def _is_zero(variable: Any) -> bool:
    data = getattr(variable, "data", None)
    return data is not None and np.size(data) == 1 and float(np.asarray(data).reshape(())) == 0.0


def _routed_relu_gradient(fgraph: Any, node: Apply) -> Apply | None:
    """The ``MaxPool2DGradient(y, MaxPool2D(y), g)`` node when ``node`` is ``relu_gradient`` of
    its output at ``y`` (``switch(isnan(y), y, switch(y > 0, routed, 0))``), else None."""
    if not isinstance(node.op.scalar_op, ps.Switch):
        return None
    condition, y, inner = node.inputs
    is_nan, picked = _op_of(condition, ps.IsNan), _op_of(inner, ps.Switch)
    if is_nan is None or picked is None or is_nan.inputs[0] is not y:
        return None
    positive, routed, zero = picked.inputs
    greater = _op_of(positive, ps.GT)
    if greater is None or greater.inputs[0] is not y or not _is_zero(greater.inputs[1]):
        return None
    route = routed.owner
    if not _is_zero(zero) or route is None or not isinstance(route.op, MaxPool2DGradient):
        return None
    pooled = route.inputs[1].owner
    if route.inputs[0] is not y or pooled is None or not isinstance(pooled.op, MaxPool2D):
        return None
    if pooled.inputs[0] is not y or pooled.op._props() != route.op._props():
        return None
    if routed.type != node.outputs[0].type or _only_reader(fgraph, inner) is not node:
        return None
    return route if _only_reader(fgraph, routed) is picked else None


@node_rewriter([Elemwise])
def pooled_relu_slopes(fgraph: Any, node: Apply) -> list | None:
    """``relu_gradient(MaxPool2DGradient(y, p, g), y)`` -> ``MaxPool2DGradient(y, p,
    relu_gradient(g, p))``: the slope taken at the pooled size (a quarter of the cells for
    2x2 windows). Equal: the routed gradient is nonzero only at each window's first maximum,
    where ``y`` equals ``p``; a NaN cell of ``y`` makes its window's ``p`` NaN, and both
    sides give NaN there."""
    if not enabled(POOLED_SLOPES_ENV):
        return None
    route = _routed_relu_gradient(fgraph, node)
    if route is None:
        return None
    y, pooled, g = route.inputs
    return [route.op(y, pooled, relu_gradient(g, pooled))]


optdb.register(
    "minidl_pooled_relu_slopes",
    WalkingGraphRewriter(pooled_relu_slopes),
    "fast_run",
    position=47.8,
)
