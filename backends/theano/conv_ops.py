"""PyTensor Ops that run the numpy backend's convolution kernels, with their gradient Ops.

PyTensor 3 has no convolution op for neural networks; ``conv.conv2d`` can build one from
slices, joins and one matrix product, which PyTensor compiles into many passes over the
image. In the C and Python modes ``conv2d`` instead uses ``Conv2D`` below: one node whose
``perform`` calls ``minidl.backends.conv_kernels`` (Winograd F(2x2, 3x3), or blocked im2col
or banded products in cache-sized blocks, threaded), and whose gradient is two more such
nodes, ``Conv2DInputGradient`` and ``Conv2DKernelGradient``. The numbers are the numpy
backend's. NUMBA and JAX modes keep the graph version, which they compile themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from minidl.backends import conv_kernels, shapes

_scratch = conv_kernels.SCRATCH  # the work arrays the numpy backend's kernels use too


def _symbolic_length(size: Any, window: int, stride: int, padding: str) -> Any:
    if padding == "valid":
        return (size - window) // stride + 1
    return (size + stride - 1) // stride


class _ConvKernelOp(Op):
    """Shared parts: the convolution's strides, padding and kernel window."""

    __props__ = ("strides", "padding", "window")
    shares_blocks_out = True  # its kernel runs blocks on threads (see compile.CompiledStep)

    def __init__(self, strides: tuple[int, int], padding: str, window: tuple[int, int]) -> None:
        self.strides = tuple(int(s) for s in strides)
        self.padding = padding
        self.window = tuple(int(k) for k in window)


class Conv2D(_ConvKernelOp):
    """``conv2d(x, kernel)``: NHWC input, HWIO kernel, cross-correlation."""

    def make_node(self, x: Any, kernel: Any) -> Apply:
        x, kernel = pt.as_tensor_variable(x), pt.as_tensor_variable(kernel)
        batch, height, width, _ = x.type.shape
        out = tuple(
            None if size is None else shapes.conv_output_length(size, k, s, self.padding)
            for size, k, s in zip((height, width), self.window, self.strides)
        )
        out_type = pt.TensorType(x.dtype, shape=(batch, *out, kernel.type.shape[3]))
        return Apply(self, [x, kernel], [out_type()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, kernel = inputs
        pads = shapes.spatial_padding(
            x.shape[1], x.shape[2], self.window, self.strides, self.padding
        )
        out = conv_kernels.conv2d_forward(x, kernel, self.strides, pads, _scratch)
        outputs[0][0] = out.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        (batch, height, width, _), kernel = input_shapes
        sizes = [
            _symbolic_length(size, k, s, self.padding)
            for size, k, s in zip((height, width), self.window, self.strides)
        ]
        return [(batch, *sizes, kernel[3])]

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        x, kernel = inputs
        (g,) = output_grads
        props = (self.strides, self.padding, self.window)
        return [Conv2DInputGradient(*props)(g, kernel, x), Conv2DKernelGradient(*props)(x, g)]


class Conv2DInputGradient(_ConvKernelOp):
    """d(loss)/d(x) of ``Conv2D`` from the output gradient, the kernel and ``x`` (its shape)."""

    def make_node(self, g: Any, kernel: Any, x: Any) -> Apply:
        g, kernel, x = (pt.as_tensor_variable(v) for v in (g, kernel, x))
        return Apply(self, [g, kernel, x], [x.type()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        g, kernel, x = inputs
        pads = shapes.spatial_padding(
            x.shape[1], x.shape[2], self.window, self.strides, self.padding
        )
        shape = (g.shape[0], *x.shape[1:])
        image = conv_kernels.conv2d_input_gradient(g, kernel, shape, self.strides, pads, _scratch)
        outputs[0][0] = np.ascontiguousarray(image, dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        return [input_shapes[2]]


class Conv2DKernelGradient(_ConvKernelOp):
    """d(loss)/d(kernel) of ``Conv2D`` from ``x`` and the output gradient."""

    def make_node(self, x: Any, g: Any) -> Apply:
        x, g = pt.as_tensor_variable(x), pt.as_tensor_variable(g)
        kernel_shape = (*self.window, x.type.shape[3], g.type.shape[3])
        return Apply(self, [x, g], [pt.TensorType(g.dtype, shape=kernel_shape)()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, g = inputs
        pads = shapes.spatial_padding(
            x.shape[1], x.shape[2], self.window, self.strides, self.padding
        )
        kernel_shape = (*self.window, x.shape[3], g.shape[3])
        result = conv_kernels.conv2d_kernel_gradient(
            x, g, kernel_shape, self.strides, pads, _scratch
        )
        outputs[0][0] = np.asarray(result, dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        x, g = input_shapes
        return [(*self.window, x[3], g[3])]


def conv2d(x: Any, kernel: Any, strides: tuple[int, int], padding: str) -> Any:
    """The ``Conv2D`` node of NHWC ``x`` and an HWIO ``kernel`` of static shape."""
    window = tuple(int(d) for d in kernel.type.shape[:2])
    return Conv2D(strides, padding, window)(x, kernel)
