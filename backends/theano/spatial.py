"""Static slicing and transposed convolution as PyTensor graph expressions.

``conv2d_transpose`` multiplies every input pixel by the kernel (one GEMM giving, per pixel,
its ``kh * kw`` output patches) and adds the patches into the output (col2im) with one strided
``inc_subtensor`` per kernel tap; when the kernel does not overlap itself (``kernel ==
strides``, ``"valid"``) the patches are only reshaped into place. PyTensor derives the
gradients of both forms.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import pytensor.tensor as pt

from minidl.backends import shapes
from minidl.backends.theano.tensors import as_tensor, pad_spatial


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
    kh, kw, out_c, in_c = (int(d) for d in kernel.type.shape)
    if x.type.shape[3] is not None and int(x.type.shape[3]) != in_c:
        raise ValueError(
            "`conv2d_transpose` expects a kernel of shape (kh, kw, out_channels, in_channels) "
            f"matching the input's {x.type.shape[3]} channels. Received: kernel.shape="
            f"{tuple(kernel.type.shape)}"
        )
    strides = shapes.normalize_tuple(strides, 2, "strides")
    padding = shapes.normalize_padding(padding)
    out_h, out_w, channels = (int(d) for d in tuple(output_shape)[1:])
    if channels != out_c:
        raise ValueError(
            f"`conv2d_transpose` output channels must match the kernel's {out_c}. "
            f"Received: output_shape={tuple(output_shape)}"
        )
    h = _static_size(x, 1, "conv2d_transpose")
    w = _static_size(x, 2, "conv2d_transpose")
    shapes.check_transpose_output(
        "conv2d_transpose", (h, w), (out_h, out_w), (kh, kw), strides, padding
    )
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
