"""Static slicing and transposed convolution on PyTensor tensors.

In the C and Python modes ``conv2d_transpose`` is one ``Conv2DTranspose`` node running the
numpy backend's convolution input-gradient kernel (as ``conv_ops`` does for ``conv2d``); its
gradients are the ``conv_ops`` nodes of a convolution (w.r.t. ``x``) and of a convolution's
kernel gradient. NUMBA and JAX modes get a graph they compile themselves: one GEMM giving
every input pixel's ``kh * kw`` output patches, added into the output (col2im) with one strided
``inc_subtensor`` per kernel tap, or only reshaped into place when the patches tile the output
(``kernel == strides``); PyTensor derives its gradients.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply

from minidl.backends import im2col, shapes
from minidl.backends.theano import conv_ops, settings
from minidl.backends.theano.math import pad_spatial
from minidl.backends.theano.variables import as_tensor


def _static_size(x: Any, axis: int, op: str) -> int:
    size = x.type.shape[axis]
    if size is None:
        raise ValueError(
            f"`{op}` needs a static size on axis {axis}. Received: input shape {x.type.shape}"
        )
    return int(size)


def slice(x: Any, start: Sequence[int], size: Sequence[int]) -> Any:  # noqa: A001
    """Return the static block ``x[start[0] : start[0] + size[0], ...]`` (``tf.slice``)."""
    x = as_tensor(x)
    start, size, shape = shapes.normalize_slice("slice", tuple(x.type.shape), start, size)
    index = tuple(
        builtins.slice(b, None if n == -1 else b + n) for b, n in zip(start, size, strict=True)
    )
    return pt.specify_shape(x[index], shape)


def conv2d_transpose(
    x: Any,
    kernel: Any,
    output_shape: tuple,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
) -> Any:
    """Transposed 2-D convolution (the gradient of ``conv2d`` w.r.t. its input)."""
    x, kernel = as_tensor(x), as_tensor(kernel)
    if x.ndim != 4 or kernel.ndim != 4 or None in kernel.type.shape:
        raise ValueError(
            "`conv2d_transpose` expects a 4-D NHWC input and a (kh, kw, out_channels, "
            f"in_channels) kernel of static shape. Received: input rank {x.ndim}, kernel "
            f"shape {kernel.type.shape}"
        )
    kernel_shape = tuple(int(d) for d in kernel.type.shape)
    kh, kw = kernel_shape[:2]
    strides, padding, (out_h, out_w) = shapes.check_conv2d_transpose(
        tuple(x.type.shape), kernel_shape, output_shape, strides, padding
    )
    _static_size(x, 1, "conv2d_transpose")
    _static_size(x, 2, "conv2d_transpose")
    if settings.mode_name() not in ("NUMBA", "JAX") and x.dtype == kernel.dtype:
        return Conv2DTranspose(strides, padding, (kh, kw), (out_h, out_w))(x, kernel)
    return _col2im_graph(x, kernel, (out_h, out_w), strides, padding)


class Conv2DTranspose(conv_ops._ConvKernelOp):
    """``conv2d_transpose(x, kernel)`` to a static ``output_hw`` (numpy backend's kernel)."""

    __props__ = ("strides", "padding", "window", "output_hw")

    def __init__(self, strides: tuple, padding: str, window: tuple, output_hw: tuple) -> None:
        super().__init__(strides, padding, window)
        self.output_hw = tuple(int(d) for d in output_hw)

    def make_node(self, x: Any, kernel: Any) -> Apply:
        x, kernel = pt.as_tensor_variable(x), pt.as_tensor_variable(kernel)
        shape = (x.type.shape[0], *self.output_hw, kernel.type.shape[2])
        return Apply(self, [x, kernel], [pt.TensorType(x.dtype, shape=shape)()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, kernel = inputs
        height, width = self.output_hw
        (top, bottom), (left, right) = shapes.spatial_padding(
            height, width, self.window, self.strides, self.padding
        )
        padded = (x.shape[0], height + top + bottom, width + left + right, kernel.shape[2])
        image = im2col.conv2d_input_gradient(x, kernel, padded, self.strides, conv_ops._scratch)
        image = image[:, top : top + height, left : left + width]
        outputs[0][0] = np.ascontiguousarray(image, dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        (batch, _, _, _), kernel = input_shapes
        return [(batch, *self.output_hw, kernel[2])]

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        x, kernel = inputs
        (g,) = output_grads
        props = (self.strides, self.padding, self.window)
        return [conv_ops.Conv2D(*props)(g, kernel), conv_ops.Conv2DKernelGradient(*props)(g, x)]


def _col2im_graph(x: Any, kernel: Any, output_hw: tuple, strides: tuple, padding: str) -> Any:
    """``conv2d_transpose`` as PyTensor graph ops (for modes that compile graphs themselves)."""
    kh, kw, out_c, in_c = (int(d) for d in kernel.type.shape)
    h, w = int(x.type.shape[1]), int(x.type.shape[2])
    out_h, out_w = output_hw
    (sh, sw), dtype = strides, x.dtype
    kernel = pt.cast(kernel, dtype)
    rows = shapes.padding_amounts(out_h, kh, sh, padding)
    cols = shapes.padding_amounts(out_w, kw, sw, padding)
    # one row of patches per input pixel: (n * h * w, kh * kw * out)
    flat = pt.reshape(pt.transpose(kernel, (3, 0, 1, 2)), (in_c, kh * kw * out_c))
    patches = pt.reshape(pt.dot(pt.reshape(x, (-1, in_c)), flat), (-1, h, w, kh, kw, out_c))
    full_h, full_w = out_h + sum(rows), out_w + sum(cols)
    if (kh, kw) == (sh, sw):  # patches tile the output without overlapping
        image = pt.reshape(pt.transpose(patches, (0, 1, 3, 2, 4, 5)), (-1, h * kh, w * kw, out_c))
        extra_h, extra_w = full_h - h * kh, full_w - w * kw
        if extra_h or extra_w:  # output_padding past the last patch
            image = pad_spatial(image, (0, extra_h), (0, extra_w), 0.0)
    else:
        image = pt.zeros((x.shape[0], full_h, full_w, out_c), dtype=dtype)
        for i in range(kh):
            for j in range(kw):
                window = image[:, i : i + sh * (h - 1) + 1 : sh, j : j + sw * (w - 1) + 1 : sw]
                image = pt.inc_subtensor(window, patches[:, :, :, i, j, :])
    out = image[:, rows[0] : rows[0] + out_h, cols[0] : cols[0] + out_w, :]
    batch = x.type.shape[0]
    return pt.specify_shape(out, (batch, out_h, out_w, out_c))
