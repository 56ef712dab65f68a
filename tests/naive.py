"""Deliberately naive, loop-based NumPy references for convolution and pooling.

These are slow and obviously correct on purpose: op tests compare every backend with them,
so no backend is ever checked against itself. They re-derive the padding rule of the
contract (``backends/interface.py``) instead of importing the shared shape helpers.
"""

from __future__ import annotations

import math

import numpy as np


def same_split(size: int, window: int, stride: int) -> tuple[int, int, int]:
    """(output length, cells before, cells after) of ``"same"`` padding, TensorFlow's split."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def _axis_plan(size: int, window: int, stride: int, padding: str) -> tuple[int, int]:
    """(output length, cells padded before) for one spatial axis."""
    if padding == "same":
        out, before, _ = same_split(size, window, stride)
        return out, before
    return max((size - window) // stride + 1, 0), 0


def conv2d(
    x: np.ndarray, kernel: np.ndarray, strides=(1, 1), padding="valid", dilation_rate=(1, 1)
) -> np.ndarray:
    """Cross-correlation of NHWC ``x`` with an HWIO ``kernel``, one output cell at a time.

    With ``dilation_rate`` the kernel taps are ``dilation_rate`` cells apart (atrous).
    """
    n, h, w, c = x.shape
    kh, kw, kc, out_c = kernel.shape
    assert kc == c
    rate_h, rate_w = dilation_rate
    out_h, top = _axis_plan(h, (kh - 1) * rate_h + 1, strides[0], padding)
    out_w, left = _axis_plan(w, (kw - 1) * rate_w + 1, strides[1], padding)
    out = np.zeros((n, out_h, out_w, out_c), dtype=np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for o in range(out_c):
                    total = 0.0
                    for di in range(kh):
                        for dj in range(kw):
                            row = i * strides[0] + di * rate_h - top
                            col = j * strides[1] + dj * rate_w - left
                            if 0 <= row < h and 0 <= col < w:  # outside: zero padding
                                for ch in range(c):
                                    total += float(x[b, row, col, ch]) * float(
                                        kernel[di, dj, ch, o]
                                    )
                    out[b, i, j, o] = total
    return out


def pool2d(x: np.ndarray, pool_size, strides=None, padding="valid", pool_mode="max") -> np.ndarray:
    """Max or average pooling of NHWC ``x``; padded cells never count (TensorFlow's rule)."""
    strides = pool_size if strides is None else strides
    n, h, w, c = x.shape
    out_h, top = _axis_plan(h, pool_size[0], strides[0], padding)
    out_w, left = _axis_plan(w, pool_size[1], strides[1], padding)
    out = np.zeros((n, out_h, out_w, c), dtype=np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for ch in range(c):
                    cells = []
                    for di in range(pool_size[0]):
                        for dj in range(pool_size[1]):
                            row = i * strides[0] + di - top
                            col = j * strides[1] + dj - left
                            if 0 <= row < h and 0 <= col < w:
                                cells.append(float(x[b, row, col, ch]))
                    out[b, i, j, ch] = np.max(cells) if pool_mode == "max" else np.mean(cells)
    return out


def max_pool_gradient(x: np.ndarray, grad: np.ndarray, pool_size, strides=None, padding="valid"):
    """Gradient of ``sum(grad * max_pool(x))`` w.r.t. ``x``: each window's first maximum."""
    strides = pool_size if strides is None else strides
    n, h, w, c = x.shape
    out_h, top = _axis_plan(h, pool_size[0], strides[0], padding)
    out_w, left = _axis_plan(w, pool_size[1], strides[1], padding)
    result = np.zeros(x.shape, dtype=np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for ch in range(c):
                    best, where = -np.inf, None
                    for di in range(pool_size[0]):
                        for dj in range(pool_size[1]):
                            row = i * strides[0] + di - top
                            col = j * strides[1] + dj - left
                            if 0 <= row < h and 0 <= col < w and x[b, row, col, ch] > best:
                                best, where = x[b, row, col, ch], (row, col)
                    result[b, where[0], where[1], ch] += grad[b, i, j, ch]
    return result
