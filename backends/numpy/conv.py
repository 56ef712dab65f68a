"""2-D convolution and pooling (NHWC, HWIO kernels, cross-correlation): their spec entries.

The arithmetic lives in ``minidl.backends.im2col`` and ``pooling`` (strided windows and
matrix products); this module builds the graph nodes, applies TensorFlow's ``"same"`` padding
split, and holds each op's forward beside its derivative rule and gradient kernels. The
kernels take the lowering's ``out`` (result buffer) and ``workers`` (threads) options; by
default they allocate their result and run on one thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import conv_kernels, pooling
from ..dilation import check_dilation, dilated_conv2d
from ..shapes import conv_output_length, normalize_padding, normalize_tuple, spatial_padding
from .graph import Node, as_node, fully_known, xp
from .math import cast, pad_spatial
from .spec import OUT, WORKERS, derivative, forward


def _pad(x: Any, pads: tuple, fill: float = 0) -> Any:
    (top, bottom), (left, right) = pads
    return pad_spatial(x, top, bottom, left, right, fill)


def _crop(x: Any, pads: tuple) -> Any:
    (top, bottom), (left, right) = pads
    return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]


def _check_nhwc(x: Node, what: str) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"`{what}` expects a 4-D NHWC tensor (batch, height, width, channels). "
            f"Received: shape={x.shape}"
        )


def conv2d(
    x: Any,
    kernel: Any,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation_rate: tuple[int, int] = (1, 1),
) -> Node:
    """2-D cross-correlation of NHWC ``x`` with an HWIO ``kernel``."""
    x, kernel = as_node(x), as_node(kernel)
    _check_nhwc(x, "conv2d")
    if kernel.ndim != 4:
        raise ValueError(
            f"`conv2d` expects a kernel of shape (kh, kw, in_channels, out_channels). "
            f"Received: kernel.shape={kernel.shape}"
        )
    if x.shape[3] is not None and kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"`conv2d` kernel expects {kernel.shape[2]} input channels. "
            f"Received: input of shape {x.shape}"
        )
    strides = normalize_tuple(strides, 2, "strides")
    padding = normalize_padding(padding)
    dtype = np.result_type(x.dtype, kernel.dtype)
    x, kernel = cast(x, dtype), cast(kernel, dtype)
    rate = check_dilation(dilation_rate, strides)
    if rate != (1, 1):  # rewritten into undilated ops (see backends.dilation)
        from minidl.backends import numpy as ops

        return dilated_conv2d(ops, x, kernel, x.shape, kernel.shape, padding, rate)
    kh, kw, _, out_c = kernel.shape
    shape = (
        x.shape[0],
        conv_output_length(x.shape[1], kh, strides[0], padding),
        conv_output_length(x.shape[2], kw, strides[1], padding),
        out_c,
    )
    attrs = {"strides": strides, "padding": padding}
    return Node("conv2d", (x, kernel), shape, dtype, attrs)


@forward("conv2d", options=(OUT, WORKERS))
def _prepare_conv2d(node: Node, out: Any = None, workers: int = 1) -> Any:
    strides, padding = node.attrs["strides"], node.attrs["padding"]
    kh, kw = node.inputs[1].shape[:2]
    scratch = conv_kernels.SCRATCH

    def conv2d_forward(x: Any, kernel: Any, epilogue: Any = None) -> Any:
        pads = spatial_padding(x.shape[1], x.shape[2], (kh, kw), strides, padding)
        return conv_kernels.conv2d_forward(
            x, kernel, strides, pads, scratch, epilogue, out=out, workers=workers
        )

    return conv2d_forward


@derivative("conv2d")
def _d_conv2d(node: Node, g: Node) -> tuple:
    x, kernel = node.inputs
    attrs = dict(node.attrs)
    gx = Node("conv2d_grad_input", (g, kernel), x.shape, g.dtype, {**attrs, "x_shape": x.shape})
    if not fully_known(x.shape[1:]):
        gx = Node("conv2d_grad_input", (g, kernel, x), x.shape, g.dtype, attrs)
    gk = Node("conv2d_grad_kernel", (x, g), kernel.shape, g.dtype, attrs)
    return gx, gk


@forward("conv2d_grad_kernel", options=(WORKERS,))
def _prepare_conv2d_grad_kernel(node: Node, workers: int = 1) -> Any:
    strides, padding = node.attrs["strides"], node.attrs["padding"]
    kernel_shape = node.shape
    scratch = conv_kernels.SCRATCH

    def conv2d_grad_kernel(x: Any, grad: Any) -> Any:
        pads = spatial_padding(x.shape[1], x.shape[2], kernel_shape[:2], strides, padding)
        return conv_kernels.conv2d_kernel_gradient(
            x, grad, kernel_shape, strides, pads, scratch, workers=workers
        )

    return conv2d_grad_kernel


@forward("conv2d_grad_input", options=(OUT, WORKERS))
def _prepare_conv2d_grad_input(node: Node, out: Any = None, workers: int = 1) -> Any:
    strides, padding = node.attrs["strides"], node.attrs["padding"]
    static = node.attrs.get("x_shape")
    scratch = conv_kernels.SCRATCH

    def conv2d_grad_input(grad: Any, kernel: Any, x: Any = None) -> Any:
        shape = (grad.shape[0], *(x.shape if x is not None else static)[1:])
        pads = spatial_padding(shape[1], shape[2], kernel.shape[:2], strides, padding)
        return conv_kernels.conv2d_input_gradient(
            grad, kernel, shape, strides, pads, scratch, out=out, workers=workers
        )

    return conv2d_grad_input


def pool2d(
    x: Any,
    pool_size: tuple[int, int],
    strides: tuple[int, int] | None = None,
    padding: str = "valid",
    pool_mode: str = "max",
) -> Node:
    """Max or average pooling of an NHWC tensor."""
    x = as_node(x)
    _check_nhwc(x, "pool2d")
    pool_size = normalize_tuple(pool_size, 2, "pool_size")
    strides = pool_size if strides is None else normalize_tuple(strides, 2, "strides")
    padding = normalize_padding(padding)
    if pool_mode not in ("max", "avg"):
        raise ValueError(f"`pool_mode` must be 'max' or 'avg'. Received: pool_mode={pool_mode!r}")
    shape = (
        x.shape[0],
        conv_output_length(x.shape[1], pool_size[0], strides[0], padding),
        conv_output_length(x.shape[2], pool_size[1], strides[1], padding),
        x.shape[3],
    )
    attrs = {"pool_size": pool_size, "strides": strides, "padding": padding, "mode": pool_mode}
    return Node("pool2d", (x,), shape, x.dtype, attrs)


def _window_counts(height: int, width: int, pads: tuple, window: tuple, strides: tuple) -> Any:
    """How many real (unpadded) cells each window covers, shaped ``(1, out_h, out_w, 1)``."""
    ones = xp.ones((1, height, width, 1), dtype=np.float64)
    return pooling.window_sums(_pad(ones, pads), window, strides)


def _pool_parts(node: Node) -> tuple:
    a = node.attrs
    return a["pool_size"], a["strides"], a["padding"], a["mode"]


@forward("pool2d", options=(OUT, WORKERS))
def _prepare_pool2d(node: Node, out: Any = None, workers: int = 1) -> Any:
    window, strides, padding, mode = _pool_parts(node)
    scratch = conv_kernels.SCRATCH
    if mode == "avg" and padding != "valid":  # the sums are divided into a new array
        out = None

    def pool2d_forward(x: Any) -> Any:
        pads = spatial_padding(x.shape[1], x.shape[2], window, strides, padding)
        if mode == "max":
            padded = _pad(x, pads, -np.inf)
            return pooling.max_pool_forward(padded, window, strides, scratch, out, workers)
        sums = pooling.window_sums(_pad(x, pads), window, strides, scratch, out, workers)
        if padding == "valid":
            sums *= x.dtype.type(1.0 / (window[0] * window[1]))
            return sums
        counts = _window_counts(x.shape[1], x.shape[2], pads, window, strides)
        return (sums / counts).astype(x.dtype, copy=False)

    return pool2d_forward


@derivative("pool2d")
def _d_pool2d(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    inputs = (g, x, node) if node.attrs["mode"] == "max" else (g, x)
    return (Node("pool2d_grad", inputs, x.shape, g.dtype, dict(node.attrs)),)


@forward("pool2d_grad", options=(OUT, WORKERS))
def _prepare_pool2d_grad(node: Node, out: Any = None, workers: int = 1) -> Any:
    window, strides, padding, mode = _pool_parts(node)
    scratch = conv_kernels.SCRATCH
    if mode != "max":  # the average's gradient allocates its own image
        out = None

    def pool2d_grad(grad: Any, x: Any, pooled: Any = None) -> Any:
        pads = spatial_padding(x.shape[1], x.shape[2], window, strides, padding)
        if mode == "max":
            padded = _pad(x, pads, -np.inf)
            image = pooling.max_pool_gradient(
                padded, pooled, grad, window, strides, scratch, out, workers
            )
        else:
            (top, bottom), (left, right) = pads
            counts = _window_counts(x.shape[1], x.shape[2], pads, window, strides)
            counts = counts.astype(grad.dtype)
            padded = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right)
            image = pooling.avg_pool_gradient(grad, counts, padded + (x.shape[3],), window, strides)
        return _crop(image, pads)

    return pool2d_grad
