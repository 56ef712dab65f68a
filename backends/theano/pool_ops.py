"""PyTensor Ops that run the shared NumPy pooling kernels (``backends.pooling``).

Built from graph ops, max-pooling and its first-maximum gradient cost PyTensor a dozen passes
over every activation (reshapes, a cumulative sum of int64 winners, casts, switches). In the
C and Python modes ``conv.pool2d`` instead uses the nodes below, whose ``perform`` calls the
numpy backend's kernels (rows then columns in cache-sized blocks, threaded), so the numbers
are the numpy backend's:

* ``MaxPool2D`` -> gradient ``MaxPool2DGradient(x, pooled, g)``: each window's gradient to its
  first maximum in row-major order; a window holding NaN gives 0 to its numbers and every NaN
  cell gets a NaN gradient (``backends.interface``). Its own gradient (w.r.t. ``g``) is
  ``MaxPool2DSelect``, which reads a tensor at every window's first maximum, and back.
* ``AvgPool2D`` -> gradient ``AvgPool2DGradient(x, g)``, whose gradient is ``AvgPool2D``.

Padded cells never count: ``"same"`` max-pooling pads with ``-inf``, average pooling divides
by the real cells of each window. NUMBA and JAX modes keep the graph version in ``conv``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from minidl.backends import conv_kernels, im2col, pooling, shapes

_scratch = conv_kernels.SCRATCH  # the work arrays the numpy backend's kernels use too


def _pad(x: np.ndarray, pads: tuple, fill: float) -> np.ndarray:
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)


def _crop(image: np.ndarray, pads: tuple) -> np.ndarray:
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return image
    return image[:, top : image.shape[1] - bottom, left : image.shape[2] - right]


@functools.lru_cache(maxsize=64)
def _window_counts(height: int, width: int, pads: tuple, window: tuple, strides: tuple) -> Any:
    """How many real (unpadded) cells each window covers, shaped ``(1, out_h, out_w, 1)``."""
    ones = np.ones((1, height, width, 1), dtype=np.float64)
    counts = pooling.window_sums(_pad(ones, pads, 0.0), window, strides)
    counts.flags.writeable = False
    return counts


def _symbolic_length(size: Any, window: int, stride: int, padding: str) -> Any:
    if padding == "valid":
        return pt.maximum((size - window) // stride + 1, 0)
    return (size + stride - 1) // stride


class _PoolOp(Op):
    """Shared parts: the pooling window, strides and padding."""

    __props__ = ("window", "strides", "padding")
    shares_blocks_out = True  # its kernel runs blocks on threads (see compile.CompiledStep)

    def __init__(self, window: tuple[int, int], strides: tuple[int, int], padding: str) -> None:
        self.window = tuple(int(k) for k in window)
        self.strides = tuple(int(s) for s in strides)
        self.padding = padding

    def _pads_of(self, x: np.ndarray) -> tuple:
        return shapes.spatial_padding(
            x.shape[1], x.shape[2], self.window, self.strides, self.padding
        )

    def _props(self) -> tuple:
        return self.window, self.strides, self.padding


def _flat_windows(padded: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    """Every window of ``padded`` as ``(n, out_h, out_w, c, kh * kw)``, row-major in it."""
    windows = im2col.window_view(padded, window, strides)
    n, out_h, out_w, kh, kw, c = windows.shape
    return windows.transpose(0, 1, 2, 5, 3, 4).reshape(n, out_h, out_w, c, kh * kw)


def _first_max_positions(padded: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    """Row-major index in its window of every window's first maximum (first NaN if any)."""
    flat = _flat_windows(padded, window, strides)
    if not flat.size:
        return np.zeros(flat.shape[:-1], dtype=np.intp)
    return flat.argmax(axis=-1)


class _PoolForwardOp(_PoolOp):
    """A pooling of NHWC ``x``: one output per window."""

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        batch, height, width, channels = x.type.shape
        out = (
            shapes.conv_output_length(size, k, s, self.padding)
            for size, k, s in zip((height, width), self.window, self.strides)
        )
        return Apply(self, [x], [pt.TensorType(x.dtype, shape=(batch, *out, channels))()])

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        batch, height, width, channels = input_shapes[0]
        sizes = [
            _symbolic_length(size, k, s, self.padding)
            for size, k, s in zip((height, width), self.window, self.strides)
        ]
        return [(batch, *sizes, channels)]


class MaxPool2D(_PoolForwardOp):
    """Max-pooling of NHWC ``x`` (a window holding NaN gives NaN)."""

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        (x,) = inputs
        padded = _pad(x, self._pads_of(x), -np.inf)
        outputs[0][0] = pooling.max_pool_forward(padded, self.window, self.strides, _scratch)

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        (x,), (pooled,), (g,) = inputs, outputs, output_grads
        return [MaxPool2DGradient(*self._props())(x, pooled, g)]


class _MaxRoutingOp(_PoolOp):
    """An Op of ``(x, pooled, t)`` linear in ``t``, routed by the first maximum of each window.

    ``MaxPool2DGradient`` and ``MaxPool2DSelect`` are each other's adjoint, so each one's
    gradient w.r.t. ``t`` is the other (and ``x``, ``pooled`` get none: the routing is
    piecewise constant in them).
    """

    shape_of = 0  # the output has the shape of this input (0: ``x``, 1: ``pooled``)

    def make_node(self, x: Any, pooled: Any, t: Any) -> Apply:
        x, pooled, t = (pt.as_tensor_variable(v) for v in (x, pooled, t))
        shape = (x, pooled)[self.shape_of].type.shape
        return Apply(self, [x, pooled, t], [pt.TensorType(t.dtype, shape=shape)()])

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        return [input_shapes[self.shape_of]]

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        x, pooled, _ = inputs
        (h,) = output_grads
        adjoint = MaxPool2DSelect if self.shape_of == 0 else MaxPool2DGradient
        return [pt.zeros_like(x), pt.zeros_like(pooled), adjoint(*self._props())(x, pooled, h)]


class MaxPool2DGradient(_MaxRoutingOp):
    """d(loss)/d(x) of ``MaxPool2D`` from ``x``, its result and the output gradient."""

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, pooled, g = inputs
        pads = self._pads_of(x)
        padded = _pad(x, pads, -np.inf)
        image = pooling.max_pool_gradient(padded, pooled, g, self.window, self.strides, _scratch)
        image = _crop(image, pads)
        outputs[0][0] = np.ascontiguousarray(image, dtype=node.outputs[0].dtype)


class MaxPool2DSelect(_MaxRoutingOp):
    """``h`` read at each window's first maximum of ``x`` (0 in windows holding NaN)."""

    shape_of = 1

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, pooled, h = inputs
        pads = self._pads_of(x)
        first = _first_max_positions(_pad(x, pads, -np.inf), self.window, self.strides)
        flat = _flat_windows(_pad(h, pads, 0.0), self.window, self.strides)
        picked = np.take_along_axis(flat, first[..., None], axis=-1)[..., 0]
        picked = np.where(np.isnan(pooled), 0, picked)  # a NaN window routes nothing
        outputs[0][0] = np.ascontiguousarray(picked, dtype=node.outputs[0].dtype)


class AvgPool2D(_PoolForwardOp):
    """Average pooling of NHWC ``x`` over the real (unpadded) cells of each window."""

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        (x,) = inputs
        pads = self._pads_of(x)
        sums = pooling.window_sums(_pad(x, pads, 0.0), self.window, self.strides, _scratch)
        if self.padding == "valid":
            sums *= x.dtype.type(1.0 / (self.window[0] * self.window[1]))
            outputs[0][0] = sums
            return
        counts = _window_counts(x.shape[1], x.shape[2], pads, self.window, self.strides)
        outputs[0][0] = (sums / counts).astype(x.dtype, copy=False)

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        (x,), (g,) = inputs, output_grads
        return [AvgPool2DGradient(*self._props())(x, g)]


class AvgPool2DGradient(_PoolOp):
    """d(loss)/d(x) of ``AvgPool2D``: each output gradient spread over its window's cells."""

    def make_node(self, x: Any, g: Any) -> Apply:
        x, g = pt.as_tensor_variable(x), pt.as_tensor_variable(g)
        return Apply(self, [x, g], [pt.TensorType(g.dtype, shape=x.type.shape)()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        x, g = inputs
        pads = self._pads_of(x)
        (top, bottom), (left, right) = pads
        counts = _window_counts(x.shape[1], x.shape[2], pads, self.window, self.strides)
        padded = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
        image = pooling.avg_pool_gradient(
            g, counts.astype(g.dtype), padded, self.window, self.strides
        )
        outputs[0][0] = np.ascontiguousarray(_crop(image, pads), dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph: Any, node: Apply, input_shapes: list) -> list:
        return [input_shapes[0]]

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        x, _ = inputs
        (h,) = output_grads
        return [pt.zeros_like(x), AvgPool2D(*self._props())(h)]


def pool2d(x: Any, window: tuple, strides: tuple, padding: str, pool_mode: str) -> Any:
    """The ``MaxPool2D`` or ``AvgPool2D`` node of NHWC ``x``."""
    op = MaxPool2D if pool_mode == "max" else AvgPool2D
    return op(window, strides, padding)(x)
