"""Hand-written NumPy training steps (forward, backward and SGD update written out directly).

These play the paper's "NumPy CPU" bar: what a careful person writes with NumPy alone,
without any framework. Gradients are derived by hand; buffers are updated in place.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from benchmarks.harness import Prepared, cyclic_block
from benchmarks.tasks import ConvTask, Dataset, MLPTask


def _softmax_nll(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = -np.log(shifted[rows, labels]).mean()
    shifted[rows, labels] -= 1.0
    shifted /= len(labels)
    return float(loss), shifted


def mlp_step(task: MLPTask, weights: list[np.ndarray], data: Dataset) -> Prepared:
    """The Fig. 5 MLP step: tanh hidden layer, softmax output, NLL, SGD, all by hand."""
    params = [w.copy() for w in weights]
    lr = np.asarray(task.learning_rate, task.dtype)

    def step(x: np.ndarray, labels: np.ndarray) -> float:
        w1, b1, w2, b2 = params
        hidden = np.tanh(x @ w1 + b1)
        loss, d_logits = _softmax_nll(hidden @ w2 + b2, labels)
        d_hidden = d_logits @ w2.T
        d_hidden *= 1.0 - hidden * hidden
        w2 -= lr * (hidden.T @ d_logits)
        b2 -= lr * d_logits.sum(axis=0)
        w1 -= lr * (x.T @ d_hidden)
        b1 -= lr * d_hidden.sum(axis=0)
        return loss

    return cyclic_block(
        step, data.label_batches(), reset=_resetter(params, weights), convert=Dataset.label_batches
    )


def _resetter(params: list[np.ndarray], weights: list[np.ndarray]):
    def reset() -> None:
        for param, initial in zip(params, weights):
            param[...] = initial

    return reset


# --------------------------------------------------------------------------- convolution


def _patches(x: np.ndarray, k: int) -> np.ndarray:
    """im2col: ``(n, h, w, c)`` -> ``(n * oh * ow, k * k * c)`` in (kh, kw, c) order."""
    n, h, w, c = x.shape
    windows = sliding_window_view(x, (k, k), axis=(1, 2))  # (n, oh, ow, c, k, k)
    windows = windows.transpose(0, 1, 2, 4, 5, 3)
    return windows.reshape(n * (h - k + 1) * (w - k + 1), k * k * c)


def _chunk(x: np.ndarray, k: int, budget_bytes: int = 32 << 20) -> int:
    """How many examples' im2col buffers fit in ``budget_bytes``."""
    _, h, w, c = x.shape
    per_example = (h - k + 1) * (w - k + 1) * k * k * c * x.itemsize
    return max(1, budget_bytes // per_example)


def _conv_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid cross-correlation: im2col and one matmul per chunk of examples."""
    k, _, c_in, c_out = kernel.shape
    n, h, w, _ = x.shape
    flat_kernel = kernel.reshape(k * k * c_in, c_out)
    out = np.empty((n, h - k + 1, w - k + 1, c_out), x.dtype)
    step = _chunk(x, k)
    for i in range(0, n, step):
        target = out[i : i + step].reshape(-1, c_out)
        np.matmul(_patches(x[i : i + step], k), flat_kernel, out=target)
    out += bias
    return out


def _conv_backward(
    x: np.ndarray, kernel: np.ndarray, d_out: np.ndarray, need_input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of a valid cross-correlation w.r.t. its input (optional), kernel and bias."""
    k, _, c_in, c_out = kernel.shape
    _, oh, ow, _ = d_out.shape
    d_kernel = np.zeros((k * k * c_in, c_out), x.dtype)
    flat_kernel = kernel.reshape(k * k * c_in, c_out)
    d_x = np.zeros_like(x) if need_input_grad else None
    step = _chunk(x, k)
    for i in range(0, len(x), step):
        d_flat = d_out[i : i + step].reshape(-1, c_out)
        d_kernel += _patches(x[i : i + step], k).T @ d_flat
        if d_x is not None:  # col2im: scatter-add each kernel offset's slice
            d_cols = (d_flat @ flat_kernel.T).reshape(-1, oh, ow, k, k, c_in)
            for r in range(k):
                for s in range(k):
                    d_x[i : i + step, r : r + oh, s : s + ow, :] += d_cols[:, :, :, r, s, :]
    return d_x, d_kernel.reshape(kernel.shape), d_out.sum(axis=(0, 1, 2))


def _pool_forward(x: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping max-pool (the sizes divide the feature maps exactly here)."""
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // size, size, w // size, size, c)
    out = blocks[:, :, 0, :, 0, :].copy()
    for r in range(size):  # one elementwise maximum per window offset beats a strided reduce
        for s in range(size):
            np.maximum(out, blocks[:, :, r, :, s, :], out=out)
    return out


def _pool_backward(x: np.ndarray, pooled: np.ndarray, d_pooled: np.ndarray) -> np.ndarray:
    """Route each gradient to the maxima of its window.

    Exact ties only happen where tanh saturates to +-1, whose own derivative is 0 there, so
    sending the gradient to every tied element changes nothing downstream.
    """
    n, h, w, c = x.shape
    ph, pw = pooled.shape[1:3]
    size = h // ph
    blocks = x.reshape(n, ph, size, pw, size, c)
    routed = np.equal(blocks, pooled[:, :, None, :, None, :]).astype(x.dtype)
    routed *= d_pooled[:, :, None, :, None, :]
    return routed.reshape(n, h, w, c)


def conv_step(task: ConvTask, weights: list[np.ndarray], data: Dataset) -> Prepared:
    """The Fig. 6 ConvLarge step by hand: im2col convolutions, reshaped max-pools, SGD."""
    params = [w.copy() for w in weights]
    lr = np.asarray(task.learning_rate, task.dtype)
    pool1, pool2 = task.pools

    def step(x: np.ndarray, labels: np.ndarray) -> float:
        k1, c1, k2, c2, w3, b3, w4, b4 = params
        a1 = _conv_forward(x, k1, c1)
        np.tanh(a1, out=a1)
        p1 = _pool_forward(a1, pool1)
        a2 = _conv_forward(p1, k2, c2)
        np.tanh(a2, out=a2)
        p2 = _pool_forward(a2, pool2)
        flat = p2.reshape(len(x), -1)
        a3 = np.tanh(flat @ w3 + b3)
        loss, d_logits = _softmax_nll(a3 @ w4 + b4, labels)
        d_a3 = (d_logits @ w4.T) * (1.0 - a3 * a3)
        d_flat = d_a3 @ w3.T
        d_a2 = _pool_backward(a2, p2, d_flat.reshape(p2.shape))
        d_a2 *= 1.0 - a2 * a2
        d_p1, d_k2, d_c2 = _conv_backward(p1, k2, d_a2, need_input_grad=True)
        d_a1 = _pool_backward(a1, p1, d_p1)
        d_a1 *= 1.0 - a1 * a1
        _, d_k1, d_c1 = _conv_backward(x, k1, d_a1, need_input_grad=False)
        grads = [
            d_k1,
            d_c1,
            d_k2,
            d_c2,
            flat.T @ d_a3,
            d_a3.sum(0),
            a3.T @ d_logits,
            d_logits.sum(0),
        ]
        for param, grad in zip(params, grads):
            param -= lr * grad
        return loss

    return cyclic_block(
        step, data.label_batches(), reset=_resetter(params, weights), convert=Dataset.label_batches
    )
