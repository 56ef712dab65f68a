"""Convolution and pooling built from PyTensor graph ops (slices, joins, one matrix product).

PyTensor 3 has no 2-D convolution or pooling op for neural networks, so both are written here
as ordinary graph expressions and PyTensor derives their gradients itself:

* ``conv2d`` gathers the ``kh * kw`` shifted (and strided) views of the padded input, stacks
  them into channels-first im2col columns ``(kh * kw * in, batch * oh * ow)`` and multiplies
  their transpose with the kernel reshaped to ``(kh * kw * in, out)``: one GEMM, in HWIO order,
  with no kernel flip (cross-correlation). With few filters the columns hold bands of output
  pixels and the kernel becomes a banded matrix, as in the numpy backend (``banded``).
* ``pool2d`` with non-overlapping windows reshapes the input into blocks and reduces them;
  overlapping or ``"same"`` windows combine the ``ph * pw`` shifted views element-wise, which
  PyTensor fuses into a single loop.

In the C and Python modes float pooling is instead one ``pool_ops`` node running the numpy
backend's pooling kernels, and most convolutions one ``conv_ops`` node; the graph versions
above serve NUMBA and JAX, which compile the graph themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from minidl.backends import banded, shapes
from minidl.backends.dilation import check_dilation, dilated_conv2d
from minidl.backends.theano import conv_ops, pool_ops, settings
from minidl.backends.theano.math import FirstMax, nan_slope_at_nan, pad_spatial
from minidl.backends.theano.variables import as_tensor


def _static_size(x: Any, axis: int, op: str, why: str) -> int:
    size = x.type.shape[axis]
    if size is None:
        raise ValueError(
            f"`{op}` needs a static size on axis {axis} {why}. Received: input shape {x.type.shape}"
        )
    return int(size)


def _padding(x: Any, kernel: tuple[int, int], strides: tuple[int, int], padding: str, op: str):
    """((top, bottom), (left, right)) for ``padding``, TensorFlow's split for ``"same"``."""
    if padding == "valid":
        return (0, 0), (0, 0)
    amounts = []
    for axis, k, s in ((1, kernel[0], strides[0]), (2, kernel[1], strides[1])):
        if s == 1:  # total padding k - 1 whatever the size
            amounts.append(((k - 1) // 2, k - 1 - (k - 1) // 2))
        else:
            size = _static_size(x, axis, op, "for 'same' padding with a stride above 1")
            amounts.append(shapes.same_padding(size, k, s))
    return amounts[0], amounts[1]


def _shifted_views(x: Any, axis: int, window: int, stride: int, out: Any) -> list[Any]:
    """The ``window`` views ``x[..., k : k + stride * (out - 1) + 1 : stride, ...]`` on ``axis``."""
    views = []
    for k in range(window):
        index = [slice(None)] * x.ndim
        index[axis] = slice(k, k + stride * (out - 1) + 1, stride)
        views.append(x[tuple(index)])
    return views


def _reduce_windows(x: Any, window, strides, out_size, combine) -> Any:
    """Fold ``combine`` over every window, one spatial axis at a time (kh + kw views, not
    kh * kw: a smaller graph that compiles faster)."""
    folded = x
    for axis, k, s, n in (
        (2, window[1], strides[1], out_size[1]),
        (1, window[0], strides[0], out_size[0]),
    ):
        views = _shifted_views(folded, axis, k, s, n)
        folded = views[0]
        for view in views[1:]:
            folded = combine(folded, view)
    return folded


def _out_sizes(xp: Any, window: tuple[int, int], strides: tuple[int, int]) -> tuple[Any, Any]:
    """Output height and width of a 'valid' window over padded ``xp`` (ints when static)."""
    sizes = []
    for axis, k, s in ((1, window[0], strides[0]), (2, window[1], strides[1])):
        size = xp.type.shape[axis]
        length = xp.shape[axis] if size is None else int(size)
        sizes.append((length - k) // s + 1)
    return sizes[0], sizes[1]


def _banded_kernel(kernel: Any, band: int, sw: int) -> Any:
    """The HWIO kernel as ``banded.banded_kernel``'s matrix, built in the graph."""
    kh, kw, channels, filters = (int(d) for d in kernel.type.shape)
    length = banded.band_length(band, kw, sw)
    matrix = pt.zeros((kh, length, channels, band, filters), dtype=kernel.dtype)
    for b in range(band):
        matrix = pt.set_subtensor(matrix[:, b * sw : b * sw + kw, :, b, :], kernel)
    return pt.reshape(matrix, (kh * length * channels, band * filters))


def _specify(out: Any, x: Any, oh: Any, ow: Any, channels: Any) -> Any:
    known = tuple(
        d if isinstance(d, int | np.integer) else None for d in (x.type.shape[0], oh, ow, channels)
    )
    return pt.specify_shape(out, known)


def conv2d(
    x: Any,
    kernel: Any,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation_rate: tuple[int, int] = (1, 1),
) -> Any:
    """2-D cross-correlation of NHWC ``x`` with an HWIO ``kernel`` (im2col + one GEMM)."""
    x, kernel = as_tensor(x), as_tensor(kernel)
    if x.ndim != 4 or kernel.ndim != 4:
        raise ValueError(
            "`conv2d` expects a 4-D NHWC input and a 4-D HWIO kernel. Received: input rank "
            f"{x.ndim}, kernel rank {kernel.ndim}"
        )
    kernel_shape = kernel.type.shape
    if any(d is None for d in kernel_shape):
        raise ValueError(
            f"`conv2d` needs a kernel of static shape. Received: kernel shape {kernel_shape}"
        )
    kh, kw, in_channels, out_channels = (int(d) for d in kernel_shape)
    strides = shapes.normalize_tuple(strides, 2, "strides")
    padding = shapes.normalize_padding(padding)
    rate = check_dilation(dilation_rate, strides)
    if rate != (1, 1):  # rewritten into undilated ops (see backends.dilation)
        from minidl.backends import theano as ops

        return dilated_conv2d(ops, x, kernel, x.type.shape, kernel_shape, padding, rate)
    if settings.mode_name() not in ("NUMBA", "JAX") and x.dtype == kernel.dtype:
        width = x.type.shape[2]
        out_w = None if width is None else shapes.conv_output_length(width, kw, strides[1], padding)
        # the numpy backend's kernels (VGG16 3x3x64..512: 2.6x faster than the graph); with
        # few filters the graph's banded product, one GEMM over the image, is as fast
        if out_w is None or banded.band_width(out_w, kw, strides[1], out_channels) == 1:
            return conv_ops.conv2d(x, kernel, strides, padding)
    rows, cols = _padding(x, (kh, kw), strides, padding, "conv2d")
    xp = pad_spatial(x, rows, cols, 0.0)
    oh, ow = _out_sizes(xp, (kh, kw), strides)
    depth = kh * kw * in_channels
    flat_kernel = pt.reshape(kernel, (depth, out_channels))
    if (kh, kw) == (1, 1):
        patches = xp[:, :: strides[0], :: strides[1], :] if strides != (1, 1) else xp
        product = pt.dot(pt.reshape(patches, (-1, depth)), flat_kernel)
    else:
        # Channels-first columns (kh * length * in, batch * oh * ow / band): every kernel
        # position copies whole shifted planes, far faster than interleaving few channels;
        # the product then reads the columns transposed, so its output is already NHWC. With
        # few filters a row covers a band of `band` output pixels (see minidl.backends.banded)
        # and the kernel becomes the banded matrix; band 1 is plain im2col.
        band = banded.band_width(ow, kw, strides[1], out_channels) if isinstance(ow, int) else 1
        length = banded.band_length(band, kw, strides[1])
        planes = pt.transpose(xp, (3, 0, 1, 2))  # (in, batch, height, width)
        # two stages of width then kh shifted copies: length + kh slices in the graph
        by_column = pt.stack(
            _shifted_views(planes, 3, length, band * strides[1], ow // band), axis=0
        )
        by_both = pt.stack(_shifted_views(by_column, 3, kh, strides[0], oh), axis=0)
        columns = pt.reshape(by_both, (kh * length * in_channels, -1))  # rows (i, j, in)
        matrix = flat_kernel if band == 1 else _banded_kernel(kernel, band, strides[1])
        product = pt.dot(pt.transpose(columns), matrix)
    out = pt.reshape(product, (xp.shape[0], oh, ow, out_channels))
    return _specify(out, x, oh, ow, out_channels)


def _window_counts(x: Any, window, strides, rows, cols, oh: int, ow: int) -> np.ndarray:
    """How many real (unpadded) cells each output window covers, shape ``(1, oh, ow, 1)``."""
    height = _static_size(x, 1, "pool2d", "for 'same' average pooling")
    width = _static_size(x, 2, "pool2d", "for 'same' average pooling")
    counts = []
    for size, k, s, before, n in (
        (height, window[0], strides[0], rows[0], oh),
        (width, window[1], strides[1], cols[0], ow),
    ):
        starts = np.arange(n) * s - before
        counts.append(np.minimum(starts + k, size) - np.maximum(starts, 0))
    return np.outer(counts[0], counts[1]).reshape(1, oh, ow, 1)


def _block_pool(x: Any, window: tuple[int, int], pool_mode: str) -> Any:
    """Non-overlapping 'valid' pooling: crop, reshape into blocks, reduce each block."""
    (ph, pw), channels = window, x.shape[3]
    height = _static_size(x, 1, "pool2d", "")
    width = _static_size(x, 2, "pool2d", "")
    oh, ow = height // ph, width // pw
    crop = x[:, : oh * ph, : ow * pw, :]
    blocks = pt.reshape(crop, (x.shape[0], oh, ph, ow, pw, channels))
    if pool_mode == "max":
        out = FirstMax((2, 4))(blocks)
    else:
        out = pt.mean(blocks, axis=(2, 4))
    return _specify(out, x, oh, ow, x.type.shape[3])


def pool2d(
    x: Any,
    pool_size: tuple[int, int],
    strides: tuple[int, int] | None = None,
    padding: str = "valid",
    pool_mode: str = "max",
) -> Any:
    """Max or average pooling of an NHWC tensor; padded cells never count."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"`pool2d` expects a 4-D NHWC input. Received: input rank {x.ndim}")
    if pool_mode not in ("max", "avg"):
        raise ValueError(f"`pool_mode` must be 'max' or 'avg'. Received: pool_mode={pool_mode!r}")
    window = shapes.normalize_tuple(pool_size, 2, "pool_size")
    strides = window if strides is None else shapes.normalize_tuple(strides, 2, "strides")
    padding = shapes.normalize_padding(padding)
    static_hw = None not in x.type.shape[1:3]
    if settings.mode_name() not in ("NUMBA", "JAX") and x.dtype.startswith("float"):
        # the numpy backend's pooling kernels (and NaN rule) in one node, its gradient another
        return pool_ops.pool2d(x, window, strides, padding, pool_mode)
    if pool_mode == "max":  # a NaN cell's gradient is NaN; its window sends 0 to the others
        x = nan_slope_at_nan(x)
    if padding == "valid" and strides == window and static_hw:
        return _block_pool(x, window, pool_mode)
    rows, cols = _padding(x, window, strides, padding, "pool2d")
    fill = -np.inf if pool_mode == "max" else 0.0
    xp = pad_spatial(x, rows, cols, fill)
    oh, ow = _out_sizes(xp, window, strides)
    if pool_mode == "max":
        # strict '>' keeps the first maximum along each axis, so the row-major first maximum
        # of every window wins and gets the gradient; a NaN wins too (NumPy's max gives NaN)
        out = _reduce_windows(
            xp,
            window,
            strides,
            (oh, ow),
            lambda best, v: pt.switch(pt.gt(v, best) | pt.isnan(v), v, best),
        )
    else:
        out = _reduce_windows(xp, window, strides, (oh, ow), lambda total, v: total + v)
        if padding == "same" and (rows != (0, 0) or cols != (0, 0)):
            counts = _window_counts(x, window, strides, rows, cols, oh, ow)
            out = out / pt.constant(counts.astype(x.dtype))
        else:
            out = out / np.asarray(window[0] * window[1], dtype=x.dtype)
    return _specify(out, x, oh, ow, x.type.shape[3])
