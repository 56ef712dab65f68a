"""Peer frameworks measured beside minidl: PyTorch (eager) and Keras 3 on TensorFlow.

Both are optional: each row raises ``Skip`` with a note when its package is missing. They are
written the way their own documentation teaches (PyTorch: ``nn.Module`` + ``optim.SGD`` on NCHW
tensors; Keras: ``Sequential`` + ``compile`` + ``fit`` / ``train_on_batch``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.environment import apply_framework_threads
from benchmarks.harness import Prepared, Skip, cyclic_block, import_or_skip
from benchmarks.tasks import ELEMWISE, ConvTask, Dataset, MLPTask


def require_torch(device: str = "cpu") -> Any:
    """Import torch and set its threads (``Skip`` when absent or when no CUDA GPU is asked for)."""
    torch = import_or_skip("torch", "optional peer: pip install torch")

    apply_framework_threads("torch")
    if device == "gpu" and not torch.cuda.is_available():
        raise Skip("torch sees no CUDA GPU")
    return torch


def _torch_linear(torch: Any, kernel: np.ndarray, bias: np.ndarray) -> Any:
    layer = torch.nn.Linear(*kernel.shape, dtype=getattr(torch, str(kernel.dtype)))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        layer.bias.copy_(torch.from_numpy(bias))
    return layer


def _torch_prepared(
    torch: Any, model: Any, lr: float, data: Dataset, to_batches, device: str
) -> Prepared:
    """Eager steps on ready-made tensors; ``to_batches(data)`` gives NumPy (x, labels) pairs."""
    target = torch.device("cuda" if device == "gpu" else "cpu")
    model.to(target)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def tensors(dataset: Dataset) -> list:
        return [
            (torch.from_numpy(x).to(target), torch.from_numpy(y).to(target))
            for x, y in to_batches(dataset)
        ]

    def step(x: Any, labels: Any) -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), labels)
        loss.backward()
        optimizer.step()
        return loss

    reset = lambda: model.load_state_dict(initial)
    return cyclic_block(step, tensors(data), lambda t: t.item(), reset=reset, convert=tensors)


def torch_mlp_step(
    task: MLPTask, weights: list[np.ndarray], data: Dataset, device: str = "cpu"
) -> Prepared:
    """Fig. 5 MLP as an eager ``nn.Sequential`` with ``optim.SGD``."""
    torch = require_torch(device=device)
    w1, b1, w2, b2 = weights
    model = torch.nn.Sequential(
        _torch_linear(torch, w1, b1), torch.nn.Tanh(), _torch_linear(torch, w2, b2)
    )
    return _torch_prepared(torch, model, task.learning_rate, data, Dataset.label_batches, device)


def torch_conv_step(
    task: ConvTask, weights: list[np.ndarray], data: Dataset, device: str = "cpu"
) -> Prepared:
    """Fig. 6 ConvLarge as an eager NCHW ``nn.Sequential`` (data transposed once, untimed)."""
    torch = require_torch(device=device)
    nn = torch.nn
    k1, c1, k2, c2, w3, b3, w4, b4 = weights
    dtype = getattr(torch, task.dtype)
    convs = []
    for kernel, bias in ((k1, c1), (k2, c2)):
        conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], task.kernel, dtype=dtype)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(bias))
        convs.append(conv)
    # Our weights flatten (h, w, c); torch flattens (c, h, w): permute the dense rows to match.
    height, width, channels = task.feature_shapes()[-1]
    w3_chw = w3.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(task.flat, -1)
    model = nn.Sequential(
        convs[0],
        nn.Tanh(),
        nn.MaxPool2d(task.pools[0]),
        convs[1],
        nn.Tanh(),
        nn.MaxPool2d(task.pools[1]),
        nn.Flatten(),
        _torch_linear(torch, w3_chw, b3),
        nn.Tanh(),
        _torch_linear(torch, w4, b4),
    )
    return _torch_prepared(torch, model, task.learning_rate, data, _nchw_batches, device)


def _nchw_batches(data: Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches transposed once to torch's NCHW layout (outside the timed steps)."""
    return [(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y) for x, y in data.label_batches()]


def torch_elemwise_function(expression: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The expression in eager torch (CPU) on tensors sharing NumPy's memory."""
    torch = require_torch()
    compute = ELEMWISE[expression]
    return lambda a, b: compute(torch.from_numpy(a), torch.from_numpy(b)).numpy()


# --------------------------------------------------------------------------- Keras 3


def require_keras() -> Any:
    """Import Keras 3 on its TensorFlow backend (``Skip`` when absent or on another backend)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_or_skip("tensorflow", "Keras 3 rows run on TensorFlow (optional peer)")
    apply_framework_threads("tensorflow")
    keras = import_or_skip("keras", "optional peer: pip install keras")

    if not keras.__version__.startswith("3."):
        raise Skip(f"keras {keras.__version__} is not Keras 3")
    if keras.backend.backend() != "tensorflow":
        raise Skip(f"keras runs on {keras.backend.backend()!r}; this row wants tensorflow")
    return keras


def _keras_model(keras: Any, layers: list, input_shape: tuple, weights: list, lr: float) -> Any:
    model = keras.Sequential([keras.Input(shape=input_shape), *layers])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="categorical_crossentropy")
    model.set_weights(weights)
    return model


def _keras_prepared(model: Any, weights: list, data: Dataset, use_fit: bool) -> Prepared:
    """``train_on_batch`` per step, or one ``fit`` call (one epoch) over n batches per block."""
    jit = f"jit_compile={model.jit_compile}"
    reset = lambda: model.set_weights(weights)
    if not use_fit:
        step = lambda x, y: model.train_on_batch(x, y)
        prepared = cyclic_block(step, data.batches(), reset=reset, convert=Dataset.batches)
        prepared.note = jit
        return prepared
    prepared = fit_blocks(model.fit, data, reset)
    prepared.note = jit + "; one fit() call per block"
    return prepared


def fit_blocks(fit: Callable[..., Any], data: Dataset, reset: Callable[[], None]) -> Prepared:
    """Blocks of n steps run as one ``fit(x, y, batch_size, epochs=1)`` call on n batches."""
    state = {"data": data, "position": 0}

    def block(n: int) -> float:
        dataset = state["data"]
        n_batches = len(dataset.x) // dataset.batch
        if n > n_batches:
            raise ValueError(f"fit block of {n} batches exceeds the {n_batches} prepared")
        start = state["position"] if state["position"] + n <= n_batches else 0
        state["position"] = start + n
        lo, hi = start * dataset.batch, (start + n) * dataset.batch
        history = fit(
            dataset.x[lo:hi],
            dataset.y[lo:hi],
            batch_size=dataset.batch,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        return float(history.history["loss"][-1])

    def rebind(new_data: Dataset) -> None:
        reset()
        state["data"], state["position"] = new_data, 0

    return Prepared(first=lambda: block(1), block=block, rebind=rebind)


def keras_mlp_step(
    task: MLPTask, weights: list[np.ndarray], data: Dataset, use_fit: bool
) -> Prepared:
    """Fig. 5 MLP as a Keras 3 ``Sequential`` on TensorFlow."""
    keras = require_keras()
    layers = [
        keras.layers.Dense(task.n_hidden, activation="tanh", dtype=task.dtype),
        keras.layers.Dense(task.n_out, activation="softmax", dtype=task.dtype),
    ]
    model = _keras_model(keras, layers, (task.n_in,), weights, task.learning_rate)
    return _keras_prepared(model, weights, data, use_fit)


def keras_conv_step(
    task: ConvTask, weights: list[np.ndarray], data: Dataset, use_fit: bool
) -> Prepared:
    """Fig. 6 ConvLarge as a Keras 3 ``Sequential`` on TensorFlow (channels-last)."""
    keras = require_keras()
    kl = keras.layers
    f1, f2 = task.filters
    layers = [
        kl.Conv2D(f1, task.kernel, activation="tanh", dtype=task.dtype),
        kl.MaxPooling2D(task.pools[0], dtype=task.dtype),
        kl.Conv2D(f2, task.kernel, activation="tanh", dtype=task.dtype),
        kl.MaxPooling2D(task.pools[1], dtype=task.dtype),
        kl.Flatten(dtype=task.dtype),
        kl.Dense(task.hidden, activation="tanh", dtype=task.dtype),
        kl.Dense(task.n_out, activation="softmax", dtype=task.dtype),
    ]
    shape = (task.image, task.image, task.channels)
    model = _keras_model(keras, layers, shape, weights, task.learning_rate)
    return _keras_prepared(model, weights, data, use_fit)
