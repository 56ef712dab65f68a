"""Static slicing, transposed and dilated convolution for numpy: forward and derivative rules.

Each op's forward and derivative rule sit side by side (entries of ``spec``):

* ``slice`` is a view; its gradient writes the incoming gradient into zeros of the input's
  shape.
* ``conv2d_transpose`` is ``conv2d``'s input gradient, so it reuses that kernel
  (``conv2d_grad_input``); its own gradients are a ``conv2d`` (w.r.t. ``x``) and a
  ``conv2d_grad_kernel`` with the roles of image and output gradient swapped.
* ``conv2d`` with a dilation rate is rewritten into ordinary ops (``backends.dilation``), so
  it needs no rule of its own.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..shapes import check_conv2d_transpose, normalize_slice
from .conv import _check_nhwc, _prepare_conv2d_grad_input, conv2d
from .graph import Node, as_node, xp
from .spec import OUT, WORKERS, derivative, forward

# ------------------------------------------------------------------------------ slice


def slice(x: Any, start: Sequence[int], size: Sequence[int]) -> Node:  # noqa: A001
    """Return the static block ``x[start[0] : start[0] + size[0], ...]`` (``tf.slice``)."""
    x = as_node(x)
    start, size, shape = normalize_slice("slice", x.shape, start, size)
    return Node("slice", (x,), shape, x.dtype, {"start": start, "size": size})


def _index(start: tuple, size: tuple) -> tuple:
    return tuple(
        builtins.slice(b, None if n == -1 else b + n) for b, n in zip(start, size, strict=True)
    )


@forward("slice", view=True)
def _prepare_slice(node: Node) -> Any:
    index = _index(node.attrs["start"], node.attrs["size"])
    return lambda x: x[index]


@forward("slice_grad")
def _prepare_slice_grad(node: Node) -> Any:
    index = _index(node.attrs["start"], node.attrs["size"])
    dtype = node.dtype

    def slice_grad(g: Any, x: Any) -> Any:
        out = xp.zeros(x.shape, dtype=dtype)
        out[index] = g
        return out

    return slice_grad


@derivative("slice")
def _grad_slice(node: Node, g: Node) -> tuple:
    (x,) = node.inputs
    return (Node("slice_grad", (g, x), x.shape, g.dtype, dict(node.attrs)),)


# ------------------------------------------------------------------- conv2d_transpose


def conv2d_transpose(
    x: Any,
    kernel: Any,
    output_shape: tuple,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
) -> Node:
    """Transposed 2-D convolution (the gradient of ``conv2d`` w.r.t. its input)."""
    x, kernel = as_node(x), as_node(kernel)
    _check_nhwc(x, "conv2d_transpose")
    strides, padding, (out_h, out_w) = check_conv2d_transpose(
        x.shape, kernel.shape, output_shape, strides, padding
    )
    out_c = kernel.shape[2]
    dtype = np.result_type(x.dtype, kernel.dtype)
    x, kernel = _cast(x, dtype), _cast(kernel, dtype)
    shape = (x.shape[0], out_h, out_w, out_c)
    attrs = {"strides": strides, "padding": padding, "x_shape": shape}
    # the forward is conv2d's input gradient: prepared by the ``conv2d_grad_input`` kernel
    return Node("conv2d_transpose", (x, kernel), shape, dtype, attrs)


def _cast(x: Node, dtype: np.dtype) -> Node:
    return x if x.dtype == dtype else Node("cast", (x,), x.shape, dtype)


@forward("conv2d_transpose", options=(OUT, WORKERS))
def _prepare_conv2d_transpose(node: Node, out: Any = None, workers: int = 1) -> Any:
    return _prepare_conv2d_grad_input(node, out=out, workers=workers)


@derivative("conv2d_transpose")
def _grad_conv2d_transpose(node: Node, g: Node) -> tuple:
    x, kernel = node.inputs
    strides, padding = node.attrs["strides"], node.attrs["padding"]
    gx = conv2d(g, kernel, strides, padding)
    gk = Node(
        "conv2d_grad_kernel",
        (g, x),
        kernel.shape,
        g.dtype,
        {"strides": strides, "padding": padding},
    )
    return gx, gk
