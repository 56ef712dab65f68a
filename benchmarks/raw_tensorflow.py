"""The same steps written directly in TensorFlow: ``tf.Variable``s updated in a ``tf.function``.

Each step is traced once for a batch dimension of ``None`` and optionally compiled with XLA
(``jit_compile=True``); minidl's tensorflow backend should come close to the matching row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.environment import apply_framework_threads
from benchmarks.harness import Prepared, Skip, cyclic_block, import_or_skip
from benchmarks.tasks import ELEMWISE, ConvTask, Dataset, MLPTask


def require(device: str = "cpu") -> Any:
    """Import TensorFlow quietly, set its threads, and return it (``Skip`` when absent)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = import_or_skip("tensorflow", "pip install -e '.[tensorflow]'")

    apply_framework_threads("tensorflow")
    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        raise Skip("TensorFlow sees no GPU")
    return tf


def _sgd_step(tf: Any, forward, params: list, lr: float, specs: list, xla: bool):
    """A ``tf.function`` computing the loss, its gradients and the in-place SGD update."""

    @tf.function(input_signature=specs, jit_compile=xla)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=forward(x))
            )
        for param, grad in zip(params, tape.gradient(loss, params)):
            param.assign_sub(lr * grad)
        return loss

    return step


def _prepared(tf: Any, step, params: list, weights: list, data: Dataset, device: str) -> Prepared:
    """Walk the batches; pin the device explicitly only when a GPU could claim the ops."""
    to_float = lambda t: float(t.numpy())

    def reset() -> None:
        for param, initial in zip(params, weights):
            param.assign(initial)

    if tf.config.list_physical_devices("GPU"):
        place, unplaced = "/GPU:0" if device == "gpu" else "/CPU:0", step

        def step(x, y):
            with tf.device(place):
                return unplaced(x, y)

    return cyclic_block(step, data.batches(), to_float, reset=reset, convert=Dataset.batches)


def mlp_step(
    task: MLPTask, weights: list[np.ndarray], data: Dataset, xla: bool, device: str = "cpu"
) -> Prepared:
    """Fig. 5 MLP with ``tf.Variable`` weights and a hand-written ``tf.function`` step."""
    tf = require(device=device)
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        params = [tf.Variable(w) for w in weights]
    w1, b1, w2, b2 = params

    def forward(x):
        return tf.tanh(x @ w1 + b1) @ w2 + b2

    specs = [
        tf.TensorSpec([None, task.n_in], task.dtype),
        tf.TensorSpec([None, task.n_out], task.dtype),
    ]
    step = _sgd_step(tf, forward, params, task.learning_rate, specs, xla)
    return _prepared(tf, step, params, weights, data, device)


def conv_step(
    task: ConvTask, weights: list[np.ndarray], data: Dataset, xla: bool, device: str = "cpu"
) -> Prepared:
    """Fig. 6 ConvLarge with ``tf.nn.conv2d`` / ``tf.nn.max_pool2d`` in NHWC."""
    tf = require(device=device)
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        params = [tf.Variable(w) for w in weights]
    k1, c1, k2, c2, w3, b3, w4, b4 = params
    pool1, pool2 = task.pools

    def forward(x):
        a = tf.tanh(tf.nn.conv2d(x, k1, 1, "VALID") + c1)
        a = tf.nn.max_pool2d(a, pool1, pool1, "VALID")
        a = tf.tanh(tf.nn.conv2d(a, k2, 1, "VALID") + c2)
        a = tf.reshape(tf.nn.max_pool2d(a, pool2, pool2, "VALID"), [-1, task.flat])
        return tf.tanh(a @ w3 + b3) @ w4 + b4

    image = (task.image, task.image, task.channels)
    specs = [
        tf.TensorSpec([None, *image], task.dtype),
        tf.TensorSpec([None, task.n_out], task.dtype),
    ]
    step = _sgd_step(tf, forward, params, task.learning_rate, specs, xla)
    return _prepared(tf, step, params, weights, data, device)


def elemwise_function(
    expression: str, dtype: str, xla: bool, device: str = "cpu"
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The expression as a ``tf.function`` over two vectors, returning a NumPy array."""
    tf = require(device=device)
    spec = tf.TensorSpec([None], dtype)
    compute = tf.function(ELEMWISE[expression], input_signature=[spec, spec], jit_compile=xla)
    place = "/GPU:0" if device == "gpu" else "/CPU:0"

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with tf.device(place):
            return compute(a, b).numpy()

    return run
