"""minidl rows: the tasks built with the public API (Sequential + layers + compile) per backend.

A training row times ``model.train_on_batch(x, y)`` (the public per-batch call, which runs
the model's compiled train step), or one ``model.fit`` call over n batches per timed block.
The element-wise rows time a step compiled with ``K.function``. A model runs only while its
backend is current; the harness makes it current before each timed block, outside the clock
(``K.set_backend`` costs milliseconds, and a real program calls it once, not per step).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.environment import apply_framework_threads
from benchmarks.harness import Prepared, Skip, cyclic_block
from benchmarks.peers import fit_blocks
from benchmarks.tasks import ELEMWISE, ConvTask, Dataset, MLPTask

# How to put each backend on a GPU, for the "no GPU" notes.
GPU_SWITCH = {
    "numpy": "set MINIDL_NUMPY_XP=cupy",
    "theano": "set MINIDL_THEANO_MODE=JAX with a CUDA build of jax",
    "tensorflow": "install a TensorFlow build that sees the GPU",
}


def use_backend(name: str, device: str) -> Any:
    """Make backend ``name`` current and return ``K`` (``Skip``: absent or wrong device)."""
    from minidl import backend as K

    if name == "tensorflow" and importlib.util.find_spec("tensorflow") is not None:
        try:
            apply_framework_threads("tensorflow")  # before the backend first starts TensorFlow
        except ImportError:  # a broken install: K.set_backend below says why
            pass
    try:
        K.set_backend(name)
    except (ImportError, ValueError) as err:
        raise Skip(f"minidl {name} backend unavailable: {err}") from None
    actual = K.backend_device()
    if actual != device:
        hint = (
            f" (to use a GPU: {GPU_SWITCH[name]})" if device == "gpu" and name in GPU_SWITCH else ""
        )
        raise Skip(f"minidl {name} backend runs on {actual}, not {device}{hint}")
    return K


def backend_setting(name: str) -> str:
    """The compile setting a backend uses now (reported beside its numbers)."""
    if name == "theano":
        from minidl.backends.theano import settings

        return f"mode={settings.mode_name()}"
    if name == "tensorflow":
        xla = os.environ.get("MINIDL_TF_XLA", "").strip().lower() in ("1", "true", "yes", "on")
        return f"XLA={'on' if xla else 'off'}"
    return os.environ.get("MINIDL_NUMPY_XP", "numpy")


def _compiled(model: Any, lr: float, weights: list[np.ndarray]) -> Any:
    from minidl.optimizers import SGD

    model.compile(optimizer=SGD(learning_rate=lr), loss="categorical_crossentropy")
    model.set_weights(weights)
    return model


def mlp_model(task: MLPTask, weights: list[np.ndarray]) -> Any:
    """Fig. 5 MLP as a minidl ``Sequential`` on the current backend."""
    from minidl.layers import Dense, Input
    from minidl.models import Sequential

    model = Sequential(
        [
            Input(shape=(task.n_in,), dtype=task.dtype),
            Dense(task.n_hidden, activation="tanh", dtype=task.dtype),
            Dense(task.n_out, activation="softmax", dtype=task.dtype),
        ]
    )
    return _compiled(model, task.learning_rate, weights)


def conv_model(task: ConvTask, weights: list[np.ndarray]) -> Any:
    """Fig. 6 ConvLarge as a minidl ``Sequential`` on the current backend."""
    from minidl.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
    from minidl.models import Sequential

    (f1, f2), (p1, p2), k, dtype = task.filters, task.pools, task.kernel, task.dtype
    model = Sequential(
        [
            Input(shape=(task.image, task.image, task.channels), dtype=task.dtype),
            Conv2D(f1, (k, k), activation="tanh", dtype=dtype),
            MaxPooling2D((p1, p1)),
            Conv2D(f2, (k, k), activation="tanh", dtype=dtype),
            MaxPooling2D((p2, p2)),
            Flatten(),
            Dense(task.hidden, activation="tanh", dtype=dtype),
            Dense(task.n_out, activation="softmax", dtype=dtype),
        ]
    )
    return _compiled(model, task.learning_rate, weights)


def training_row(
    backend: str,
    build: Callable[[Any, list[np.ndarray]], Any],
    task: Any,
    weights: list[np.ndarray],
    data: Dataset,
    use_fit: bool,
    device: str,
) -> Prepared:
    """Build the model on ``backend``; time ``train_on_batch`` per step or ``fit`` per block."""
    K = use_backend(backend, device)
    model = build(task, weights)
    note = backend_setting(backend)

    def activate() -> None:
        if K.name() != backend:  # a model runs only while its backend is current
            K.set_backend(backend)

    def reset() -> None:
        activate()
        model.set_weights(weights)

    if use_fit:
        prepared = fit_blocks(model.fit, data, reset)
        prepared.note = note + "; one fit() call per block"
    else:
        prepared = cyclic_block(
            model.train_on_batch, data.batches(), reset=reset, convert=Dataset.batches
        )
        prepared.note = note
    prepared.activate = activate
    return prepared


def elemwise_function(
    backend: str, expression: str, dtype: str
) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], str]:
    """The expression compiled with ``K.function`` on ``backend`` (CPU)."""
    K = use_backend(backend, "cpu")
    compute = ELEMWISE[expression]
    step = K.function(lambda a, b: ([compute(a, b)], []), [((None,), dtype), ((None,), dtype)])

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return step(a, b)[0]

    return run, backend_setting(backend)
