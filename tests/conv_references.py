"""Convolution references from their definitions (float64), and one backend step to check.

The forward and the kernel gradient are sums over the kernel taps of shifted inputs; the input
gradient is every tap adding the output gradient back. ``backend_conv2d`` runs ``K.conv2d`` and
its two gradients in one compiled step on the current backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from minidl import backend as K


def _shifted(x: np.ndarray, pads: tuple, kernel_shape: tuple, out_shape: tuple) -> Iterator:
    """Every tap's ``(i, j, window)``: the input padded by ``pads`` under that tap."""
    padded = np.pad(x, ((0, 0), *pads, (0, 0)))
    out_h, out_w = out_shape[1:3]
    for i in range(kernel_shape[0]):
        for j in range(kernel_shape[1]):
            yield i, j, padded[:, i : i + out_h, j : j + out_w]


def forward(x: np.ndarray, kernel: np.ndarray, pads: tuple, out_shape: tuple) -> np.ndarray:
    """Stride-1 cross-correlation of ``x`` padded by ``pads``; ``out_shape`` is the result's."""
    out = np.zeros(out_shape)
    for i, j, window in _shifted(x, pads, kernel.shape, out_shape):
        out += window @ kernel[i, j]
    return out


def kernel_gradient(x: np.ndarray, grad: np.ndarray, kernel_shape: tuple, pads: tuple):
    """d(sum(conv(x) * grad))/dkernel: tap ``(i, j)`` is its shifted input times ``grad``."""
    result = np.zeros(kernel_shape)
    for i, j, window in _shifted(x, pads, kernel_shape, grad.shape):
        result[i, j] = window.reshape(-1, x.shape[3]).T @ grad.reshape(-1, grad.shape[3])
    return result


def input_gradient(grad: np.ndarray, kernel: np.ndarray, x_shape: tuple, pads: tuple):
    """d(sum(conv(x) * grad))/dx: every tap ``(i, j)`` adds ``grad @ kernel[i, j].T`` back."""
    (top, bottom), (left, right) = pads
    n, h, w, c = x_shape
    image = np.zeros((n, h + top + bottom, w + left + right, c))
    out_h, out_w = grad.shape[1:3]
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            image[:, i : i + out_h, j : j + out_w] += grad @ kernel[i, j].T
    return image[:, top : top + h, left : left + w]


def backend_conv2d(x, kernel, grad, padding: str, name: str) -> list:
    """``[conv2d(x, kernel), d/dx, d/dkernel]`` of ``sum(conv2d * grad)`` on the backend."""

    def step(x_in, kernel_in, grad_in):
        out = K.conv2d(x_in, kernel_in, (1, 1), padding)
        loss = K.sum(out * grad_in)
        return [out, *K.gradients(loss, [x_in, kernel_in])], []

    specs = [(a.shape, "float64") for a in (x, kernel, grad)]
    return K.function(step, specs, name=name)(x, kernel, grad)


def assert_matches(x, kernel, grad, pads, results, tolerance: float = 1e-9) -> None:
    """``results`` (forward, input gradient, kernel gradient) against the references."""
    out, gx, gk = results
    close = {"rtol": tolerance, "atol": tolerance}
    np.testing.assert_allclose(out, forward(x, kernel, pads, grad.shape), **close)
    np.testing.assert_allclose(gx, input_gradient(grad, kernel, x.shape, pads), **close)
    np.testing.assert_allclose(gk, kernel_gradient(x, grad, kernel.shape, pads), **close)
