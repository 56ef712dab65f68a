"""The same steps written directly with PyTensor: shared variables, ``pt.grad`` and updates.

This is how one used Theano in 2010 (and PyTensor today), with no framework on top; minidl's
theano backend should come close to it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.harness import Prepared, cyclic_block, import_or_skip
from benchmarks.tasks import ELEMWISE, ConvTask, Dataset, MLPTask


def _require() -> Any:
    """Import PyTensor configured like minidl's theano backend configures it (same BLAS link)."""
    pytensor = import_or_skip("pytensor", "pip install -e '.[theano]'")

    settings = minidl_settings()
    if settings is not None:
        settings.configure()
    return pytensor


def minidl_settings() -> Any:
    """minidl's theano-backend settings module, or None when it cannot be imported."""
    if importlib.util.find_spec("pytensor") is None:
        return None
    try:
        return importlib.import_module("minidl.backends.theano.settings")
    except ImportError:  # pytensor present but unusable: raw rows will say why
        return None


def matched_modes() -> tuple[str, str]:
    """(our name, PyTensor mode) of the mode minidl's theano backend compiles with now."""
    settings = minidl_settings()
    if settings is None:
        return "NUMBA", "NUMBA"
    settings.configure()
    name = settings.mode_name()
    return name, settings.MODE_ALIASES[name]


def other_mode(name: str) -> tuple[str, str]:
    """The other CPU mode worth showing beside ``name`` (C <-> NUMBA)."""
    return ("NUMBA", "NUMBA") if name in ("C", "CVM", "FAST_RUN") else ("C", "CVM")


def _compile_sgd(pytensor: Any, inputs: list, loss: Any, params: list, lr: float, mode: str):
    import pytensor.tensor as pt

    grads = pt.grad(loss, params)
    updates = [(p, p - np.asarray(lr, p.dtype) * g) for p, g in zip(params, grads)]
    return pytensor.function(inputs, loss, updates=updates, mode=mode)


def _nll(pt: Any, logits: Any, targets: Any) -> Any:
    """Mean categorical cross-entropy of softmax(logits) against one-hot targets."""
    return -pt.mean(pt.sum(targets * pt.special.log_softmax(logits, axis=-1), axis=-1))


def mlp_step(task: MLPTask, weights: list[np.ndarray], data: Dataset, mode: str) -> Prepared:
    """Fig. 5 MLP as one ``pytensor.function`` with SGD updates on shared variables."""
    pytensor = _require()
    import pytensor.tensor as pt

    params = [pytensor.shared(w.copy(), name=n) for w, n in zip(weights, ("W1", "b1", "W2", "b2"))]
    x = pt.matrix("x", dtype=task.dtype)
    y = pt.matrix("y", dtype=task.dtype)
    w1, b1, w2, b2 = params
    logits = pt.tanh(x @ w1 + b1) @ w2 + b2
    step = _compile_sgd(pytensor, [x, y], _nll(pt, logits, y), params, task.learning_rate, mode)
    return _prepared(step, params, weights, data)


def _prepared(step, params: list, weights: list[np.ndarray], data: Dataset) -> Prepared:
    def reset() -> None:
        for param, initial in zip(params, weights):
            param.set_value(initial.copy())

    return cyclic_block(step, data.batches(), reset=reset, convert=Dataset.batches)


def _conv_valid(pt: Any, x: Any, kernel: Any, k: int, out_hw: int) -> Any:
    """Valid cross-correlation as im2col: stack the k*k shifted views, then one matmul."""
    shifted = [x[:, r : r + out_hw, s : s + out_hw, :] for r in range(k) for s in range(k)]
    patches = pt.stack(shifted, axis=3)  # (n, oh, ow, k*k, c_in), matches (kh, kw, c_in)
    flat = patches.reshape((x.shape[0], out_hw, out_hw, -1))
    return pt.tensordot(flat, kernel.reshape((-1, kernel.shape[-1])), axes=[[3], [0]])


def _max_pool(pt: Any, x: Any, size: int, in_hw: int, channels: int) -> Any:
    """Non-overlapping max-pool via reshape (the sizes divide exactly here)."""
    out_hw = in_hw // size
    blocks = x.reshape((x.shape[0], out_hw, size, out_hw, size, channels))
    return pt.max(blocks, axis=(2, 4))


def conv_step(task: ConvTask, weights: list[np.ndarray], data: Dataset, mode: str) -> Prepared:
    """Fig. 6 ConvLarge as one ``pytensor.function`` (im2col convolutions, reshaped pools)."""
    pytensor = _require()
    import pytensor.tensor as pt

    names = ("K1", "c1", "K2", "c2", "W3", "b3", "W4", "b4")
    params = [pytensor.shared(w.copy(), name=n) for w, n in zip(weights, names)]
    k1, c1, k2, c2, w3, b3, w4, b4 = params
    x = pt.tensor4("x", dtype=task.dtype)
    y = pt.matrix("y", dtype=task.dtype)
    (h1, _, f1), (p1, _, _), (h2, _, f2), _ = task.feature_shapes()
    k = task.kernel
    a1 = pt.tanh(_conv_valid(pt, x, k1, k, h1) + c1)
    a2 = pt.tanh(_conv_valid(pt, _max_pool(pt, a1, task.pools[0], h1, f1), k2, k, h2) + c2)
    flat = _max_pool(pt, a2, task.pools[1], h2, f2).reshape((x.shape[0], task.flat))
    logits = pt.tanh(flat @ w3 + b3) @ w4 + b4
    step = _compile_sgd(pytensor, [x, y], _nll(pt, logits, y), params, task.learning_rate, mode)
    return _prepared(step, params, weights, data)


def elemwise_function(expression: str, dtype: str, mode: str) -> Callable[..., Any]:
    """The expression compiled by ``pytensor.function`` over two vectors (fused loops)."""
    pytensor = _require()
    import pytensor.tensor as pt

    a = pt.vector("a", dtype=dtype)
    b = pt.vector("b", dtype=dtype)
    expr = ELEMWISE[expression](a, b)
    return pytensor.function([a, b], expr, mode=mode, on_unused_input="ignore")
