"""Which kernel runs a 2-D convolution: Winograd F(2x2, 3x3) or stacked rows where they pay,
im2col elsewhere.

The numpy backend's convolution ops and the theano backend's convolution Ops call these
three functions on unpadded NHWC arrays with the padding amounts already worked out, so both
backends run the same arithmetic. ``winograd`` takes the 3x3 stride-1 convolutions with
``MIN_TILES`` output tiles or more (below that, transforming the kernel costs more than it
saves) and enough channels on each side: ``INPUT_GRADIENT_MIN_CHANNELS`` for the input
gradient, where it replaces im2col's scatter of window gradients (2-3x slower at any width),
``FORWARD_MIN_CHANNELS`` for the forward, where im2col's products with ``9 * in``-long
rows are as fast below that, and ``KERNEL_GRADIENT_MIN_CHANNELS`` (with its own, smaller
tile count) for the kernel gradient. ``rowstack`` goes first for the forwards and input
gradients of stride-1 convolutions with fewer than ``ROWSTACK_MAX_CHANNELS`` channels on one
side, ``ROWSTACK_MIN_CHANNELS`` or more stacked (the input's; the output gradient's for an
input gradient) and enough filters for im2col rather than bands: im2col's products from a copy
a third the size, and on VGG16's and U-Net's 32- and 64-channel layers faster than Winograd's
input gradient too (``python -m benchmarks.conv_layers`` times every choice per layer).
``im2col`` takes the rest.

Setting ``MINIDL_WINOGRAD=0`` (or ``WINOGRAD = False`` here) sends every convolution Winograd
would take elsewhere, and ``MINIDL_ROWSTACK=0`` (``ROWSTACK = False``) does the same for
stacked rows: the way to check whether a wrong result comes from one of those kernels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import banded, im2col, rowstack, winograd

WINOGRAD = os.environ.get("MINIDL_WINOGRAD", "1").strip() != "0"
ROWSTACK = os.environ.get("MINIDL_ROWSTACK", "1").strip() != "0"

# Winograd only when a call has at least this many 2x2 output tiles (batch included) ...
MIN_TILES = 192
# ... and at least this many channels in and out (measured on VGG16's and U-Net's layers)
FORWARD_MIN_CHANNELS = 128
INPUT_GRADIENT_MIN_CHANNELS = 16
# the kernel gradient's own rule: from 128 channels (VGG16's 3x3x256 and 3x3x512 layers 1.6x
# faster than im2col; at 64 slower) and this many tiles (its 16 products are tiles long)
KERNEL_GRADIENT_MIN_CHANNELS = 128
KERNEL_GRADIENT_MIN_TILES = 32
# stacked rows from this many stacked channels (below, a stacked pixel's runs are too short)
# and below this many channels on one side (from there Winograd's products are fewer)
ROWSTACK_MIN_CHANNELS = 16
ROWSTACK_MAX_CHANNELS = 128

# the padded input of an im2col call (one per thread; it never outlives the call)
_PADDED = im2col.Scratch()

# work arrays (per thread) that the backends hand to every convolution and pooling call: one
# set reused by every layer stays in cache, where one set per layer (13 on VGG16) did not
# (the kernel gradients of a VGG16 step measured 1.4x slower with a set per layer)
SCRATCH = im2col.Scratch()


def uses_winograd(
    kind: str,
    batch: int,
    out_h: int,
    out_w: int,
    kernel_shape: tuple,
    strides: tuple,
    dtype: Any,
) -> bool:
    """Whether the ``kind`` of a convolution ("forward", "input_gradient", "kernel_gradient")
    runs Winograd."""
    if not WINOGRAD or not winograd.applies(kernel_shape, strides, dtype):
        return False
    least, tiles = {
        "forward": (FORWARD_MIN_CHANNELS, MIN_TILES),
        "input_gradient": (INPUT_GRADIENT_MIN_CHANNELS, MIN_TILES),
        "kernel_gradient": (KERNEL_GRADIENT_MIN_CHANNELS, KERNEL_GRADIENT_MIN_TILES),
    }[kind]
    if min(kernel_shape[2:]) < least:
        return False
    return batch * ((out_h + 1) // 2) * ((out_w + 1) // 2) >= tiles


def uses_rowstack(kind: str, kernel_shape: tuple, strides: tuple, pads: tuple) -> bool:
    """Whether the ``kind`` of a convolution runs ``rowstack`` (tried before Winograd)."""
    kh, kw, c, k = kernel_shape
    if kind == "kernel_gradient" or not ROWSTACK or tuple(strides) != (1, 1):
        return False
    if min(c, k) >= ROWSTACK_MAX_CHANNELS:
        return False
    if kind == "input_gradient":
        (top, bottom), (left, right) = pads
        if max(top, bottom) > kh - 1 or max(left, right) > kw - 1:
            return False
        c, k = k, c  # the forward of the output gradient: its channels are stacked
    return c >= ROWSTACK_MIN_CHANNELS and k >= banded.MIN_FILTERS_FOR_IM2COL


def kernel_for(
    kind: str, out_shape: tuple, kernel_shape: tuple, strides: tuple, pads: tuple, dtype: Any
) -> str:
    """The module that runs the ``kind`` of a convolution: rowstack, winograd or im2col.

    ``out_shape``: the convolution's NHWC output; ``dtype``: both arrays' dtype, or None when
    they differ (Winograd needs one).
    """
    if uses_rowstack(kind, kernel_shape, strides, pads):
        return "rowstack"
    batch, out_h, out_w = out_shape[:3]
    if dtype is not None and uses_winograd(kind, batch, out_h, out_w, kernel_shape, strides, dtype):
        return "winograd"
    return "im2col"


def _padded(x: Any, pads: tuple) -> Any:
    (top, bottom), (left, right) = pads
    height, width = x.shape[1] + top + bottom, x.shape[2] + left + right
    return im2col.padded_copy(x, pads, height, width, _PADDED)


def _out_size(size: int, k: int, s: int, pad: tuple) -> int:
    return im2col.conv_output_size(size + pad[0] + pad[1], k, s)


def conv2d_forward(
    x: Any,
    kernel: Any,
    strides: tuple[int, int],
    pads: tuple,
    scratch: im2col.Scratch,
    epilogue: Callable[[Any], Any] | None = None,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """Cross-correlation of NHWC ``x``, padded by ``pads``, with an HWIO ``kernel``.

    ``pads``: ``((top, bottom), (left, right))``; ``scratch`` holds im2col's work arrays;
    ``epilogue``, ``out`` and ``workers`` as in ``im2col.conv2d_forward``.
    """
    kh, kw = kernel.shape[:2]
    out_h = _out_size(x.shape[1], kh, strides[0], pads[0])
    out_w = _out_size(x.shape[2], kw, strides[1], pads[1])
    dtype = x.dtype if x.dtype == kernel.dtype else None
    choice = kernel_for("forward", (x.shape[0], out_h, out_w), kernel.shape, strides, pads, dtype)
    if choice == "rowstack":
        return rowstack.conv2d_forward(x, kernel, pads, epilogue, out, workers)
    if choice == "winograd":
        return winograd.conv2d_forward(x, kernel, pads, epilogue, out, workers)
    return im2col.conv2d_forward(_padded(x, pads), kernel, strides, scratch, epilogue, out, workers)


def conv2d_input_gradient(
    grad: Any,
    kernel: Any,
    input_shape: tuple,
    strides: tuple[int, int],
    pads: tuple,
    scratch: im2col.Scratch,
    out: Any = None,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(x) of ``conv2d_forward`` from its output gradient; ``x``'s shape (a view).

    ``out`` (see ``im2col.result_array``) is asked for ``x``'s shape on the Winograd and
    stacked-rows paths and for the padded input's shape on the im2col path, which crops it.
    """
    n, height, width, channels = input_shape
    (top, bottom), (left, right) = pads
    dtype = grad.dtype if grad.dtype == kernel.dtype else None
    choice = kernel_for("input_gradient", grad.shape, kernel.shape, strides, pads, dtype)
    if choice == "rowstack":
        return rowstack.conv2d_input_gradient(grad, kernel, pads, out, workers)
    if choice == "winograd":
        return winograd.conv2d_input_gradient(grad, kernel, pads, out, workers)
    padded = (n, height + top + bottom, width + left + right, channels)
    image = im2col.conv2d_input_gradient(grad, kernel, padded, strides, scratch, out, workers)
    return image[:, top : top + height, left : left + width]


def conv2d_kernel_gradient(
    x: Any,
    grad: Any,
    kernel_shape: tuple,
    strides: tuple[int, int],
    pads: tuple,
    scratch: im2col.Scratch,
    workers: int | None = None,
) -> Any:
    """d(loss)/d(kernel) of ``conv2d_forward`` from ``x`` and the output gradient."""
    dtype = x.dtype if x.dtype == grad.dtype else None
    choice = kernel_for("kernel_gradient", grad.shape, kernel_shape, strides, pads, dtype)
    if choice == "winograd":
        return winograd.conv2d_kernel_gradient(x, grad, pads, workers)
    padded = _padded(x, pads)
    return im2col.conv2d_kernel_gradient(padded, grad, kernel_shape, strides, scratch, workers)
