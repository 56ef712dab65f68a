"""Deliberately naive, loop-based NumPy references for the spatial ops added with issue 10.

Transposed convolution, bilinear upsampling and nearest-pixel affine resampling
(``loop_nearest``), one output cell at a time (dilated convolution is ``naive.conv2d`` with a
``dilation_rate``); the padding rule is re-derived here
(``naive.same_split``), not imported from the backends.
"""

from __future__ import annotations

import math

import numpy as np

from .naive import same_split


def conv2d_transpose(x, kernel, output_hw, strides=(1, 1), padding="valid") -> np.ndarray:
    """Scatter every input cell through a ``(kh, kw, out, in)`` kernel into the output."""
    n, h, w, c = x.shape
    kh, kw, out_c, in_c = kernel.shape
    assert in_c == c
    out_h, out_w = output_hw
    top = same_split(out_h, kh, strides[0])[1] if padding == "same" else 0
    left = same_split(out_w, kw, strides[1])[1] if padding == "same" else 0
    out = np.zeros((n, out_h, out_w, out_c), dtype=np.float64)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for di in range(kh):
                    for dj in range(kw):
                        row, col = i * strides[0] + di - top, j * strides[1] + dj - left
                        if 0 <= row < out_h and 0 <= col < out_w:
                            for o in range(out_c):
                                for ch in range(c):
                                    out[b, row, col, o] += x[b, i, j, ch] * kernel[di, dj, o, ch]
    return out


def upsample_bilinear(x: np.ndarray, size=(2, 2)) -> np.ndarray:
    """Bilinear resize by integer factors with half-pixel centres (TensorFlow 2, Keras 3)."""
    n, h, w, c = x.shape
    out = np.zeros((n, h * size[0], w * size[1], c), dtype=np.float64)
    for i in range(h * size[0]):
        src_i = (i + 0.5) / size[0] - 0.5
        i0 = math.floor(src_i)
        fi = src_i - i0
        r0, r1 = min(max(i0, 0), h - 1), min(max(i0 + 1, 0), h - 1)
        for j in range(w * size[1]):
            src_j = (j + 0.5) / size[1] - 0.5
            j0 = math.floor(src_j)
            fj = src_j - j0
            c0, c1 = min(max(j0, 0), w - 1), min(max(j0 + 1, 0), w - 1)
            top = x[:, r0, c0] * (1 - fj) + x[:, r0, c1] * fj
            bottom = x[:, r1, c0] * (1 - fj) + x[:, r1, c1] * fj
            out[:, i, j] = top * (1 - fi) + bottom * fi
    return out


def loop_nearest(x, matrix, fill_mode, cval):
    """Each output pixel reads the input pixel its centred position maps to (rounded)."""
    h, w, _ = x.shape
    out = np.empty_like(x)
    for r in range(h):
        for c in range(w):
            src = matrix @ np.array([r - (h - 1) / 2, c - (w - 1) / 2, 1.0])
            rr, cc = int(np.rint(src[0] + (h - 1) / 2)), int(np.rint(src[1] + (w - 1) / 2))
            inside = 0 <= rr < h and 0 <= cc < w
            if fill_mode == "constant" and not inside:
                out[r, c] = cval
                continue
            if fill_mode == "wrap":
                rr, cc = rr % h, cc % w
            elif fill_mode == "reflect":
                rr, cc = (rr % (2 * h)), (cc % (2 * w))
                rr = rr if rr < h else 2 * h - 1 - rr
                cc = cc if cc < w else 2 * w - 1 - cc
            else:
                rr, cc = min(max(rr, 0), h - 1), min(max(cc, 0), w - 1)
            out[r, c] = x[rr, cc]
    return out
