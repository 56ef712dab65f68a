"""Lowering pass (a PyTensor rewrite): a Conv2D layer's bias and relu run inside its conv Op.

A Conv2D layer computes ``conv2d -> add(bias) -> relu``; op by op, the bias and the relu are
two more passes over the whole activation, while the convolution had every block of output
rows in cache right after computing it. ``fuse_conv_bias_relu`` replaces ``Relu(conv2d(x, k) +
b)`` (and ``conv2d(x, k) + b`` with no relu) by one ``Conv2DBiasRelu`` node whose kernel adds
``b`` and takes the relu on each block in place (``conv_kernels``' epilogue), when nobody else
reads the convolution or the sum and ``b`` broadcasts along the channel axis. The numbers are
the ones op by op. It runs after gradients are built, on the compiled graph only; the
numpy backend's ``fusion`` pass does the same. ``MINIDL_THEANO_FUSION=0`` switches it off
(read when a step is compiled), e.g. to check a wrong result against the unfused graph.
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

from minidl.backends import conv_kernels
from minidl.backends.theano import conv_ops
from minidl.backends.theano.relu_ops import Relu

SWITCH_ENV = "MINIDL_THEANO_FUSION"


def enabled() -> bool:
    """Whether the pass runs (``MINIDL_THEANO_FUSION`` is not ``0``)."""
    return os.environ.get(SWITCH_ENV, "1").strip() != "0"


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

        pads = conv_ops._pads(x.shape[1], x.shape[2], self.window, self.strides, self.padding)
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
