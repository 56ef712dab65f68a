"""VGG16 (no top, then ``Flatten`` and ``Dense(2)``) on minidl beside Keras 3 and PyTorch.

Usage::

    python -m benchmarks.vgg16 --quick       # 3 rounds per configuration, ~10 minutes
    python -m benchmarks.vgg16               # 5 rounds
    python -m benchmarks.vgg16 --only train:8x112 --backends numpy --no-memory

Configurations: a training step (``train_on_batch``, SGD) and a prediction
(``predict_on_batch``) at batch 8 on 112x112 images and at batch 1 on 224x224 images. Rows:
minidl on each backend, Keras 3 on TensorFlow and PyTorch (each when installed), all from the
same initial weights on the same batch, each library with its default threads. How rows are
timed and weighed is in ``benchmarks.real_models``. Writes ``vgg16.json`` and ``vgg16.md``
to ``--out``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import real_models
from benchmarks.harness import Prepared
from benchmarks.real_models import Config

LEARNING_RATE = 1e-3
CLASSES = 2
# train >= 0.8x Keras 3's step, predict >= 1.0x (numpy); theano train >= 0.8x
TARGETS = {("numpy", "train"): 0.8, ("numpy", "predict"): 1.0, ("theano", "train"): 0.8}
BLOCKS = tuple(zip((64, 128, 256, 512, 512), (2, 2, 3, 3, 3)))  # (filters, convolutions)

CONFIGS = tuple(
    Config(kind, batch, size)
    for batch, size in ((8, 112), (1, 224))
    for kind in ("train", "predict")
)


def batch_data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """One batch of images and one-hot labels (fixed seed)."""
    rng = np.random.default_rng(config.batch * 1000 + config.size)
    x = rng.uniform(-1.0, 1.0, (config.batch, config.size, config.size, 3)).astype("float32")
    y = np.eye(CLASSES, dtype="float32")[np.arange(config.batch) % CLASSES]
    return x, y


def initial_weights(size: int) -> list[np.ndarray]:
    """Glorot-uniform kernels and zero biases in the Keras layout (HWIO; flatten order HWC)."""
    rng = np.random.default_rng(0)
    weights, channels = [], 3
    for width, convs in BLOCKS:
        for _ in range(convs):
            limit = np.sqrt(6.0 / (9 * channels + 9 * width))
            weights += [rng.uniform(-limit, limit, (3, 3, channels, width)), np.zeros(width)]
            channels = width
    flat = (size // 32) ** 2 * 512
    limit = np.sqrt(6.0 / (flat + CLASSES))
    weights += [rng.uniform(-limit, limit, (flat, CLASSES)), np.zeros(CLASSES)]
    return [w.astype("float32") for w in weights]


def minidl_row(backend: str, config: Config) -> Prepared:
    """minidl's ``VGG16(include_top=False)`` plus ``Flatten`` and ``Dense(2)`` on ``backend``."""
    from benchmarks.minidl_rows import use_backend

    use_backend(backend, "cpu")
    from minidl.applications.vgg16 import VGG16
    from minidl.layers import Dense, Flatten
    from minidl.optimizers import SGD

    model = VGG16(include_top=False, input_shape=(config.size, config.size, 3))
    model.add(Flatten())
    model.add(Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=SGD(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    model.set_weights(initial_weights(config.size))
    return real_models.minidl_prepared(backend, model, config, *batch_data(config))


def keras_row(config: Config) -> Prepared:
    """Keras 3's ``applications.VGG16(include_top=False)`` plus the same head, on TensorFlow."""
    from benchmarks.peers import require_keras

    keras = require_keras()
    base = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(config.size, config.size, 3)
    )
    model = keras.Sequential(
        [base, keras.layers.Flatten(), keras.layers.Dense(CLASSES, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss="categorical_crossentropy",
    )
    model.set_weights(initial_weights(config.size))
    return real_models.keras_prepared(model, config, *batch_data(config))


def torch_row(config: Config) -> Prepared:
    """The same network in PyTorch (NCHW; weights converted from the Keras layout)."""
    torch = real_models.require_torch()
    nn = torch.nn
    weights = initial_weights(config.size)
    layers: list[Any] = []
    at, channels = 0, 3
    for width, convs in BLOCKS:
        for _ in range(convs):
            conv = nn.Conv2d(channels, width, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(weights[at].transpose(3, 2, 0, 1).copy()))
                conv.bias.copy_(torch.from_numpy(weights[at + 1]))
            layers += [conv, nn.ReLU()]
            at, channels = at + 2, width
        layers.append(nn.MaxPool2d(2))
    side = config.size // 32
    dense = nn.Linear(side * side * 512, CLASSES)
    kernel = weights[at].reshape(side, side, 512, CLASSES).transpose(3, 2, 0, 1)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(kernel.reshape(CLASSES, -1).copy()))
        dense.bias.copy_(torch.from_numpy(weights[at + 1]))
    model = nn.Sequential(*layers, nn.Flatten(), dense)
    x, y = batch_data(config)
    return real_models.torch_prepared(
        model,
        config,
        torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
        torch.from_numpy(y.argmax(axis=1)),
        nn.CrossEntropyLoss(),
        LEARNING_RATE,
        lambda logits: torch.softmax(logits, dim=1),
    )


BENCHMARK = real_models.ModelBenchmark(
    name="vgg16",
    title="VGG16 benchmark",
    configs=CONFIGS,
    minidl_row=minidl_row,
    keras_row=keras_row,
    torch_row=torch_row,
    targets=TARGETS,
)


def check_targets(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS/FAIL of every VGG16 ratio target (``TARGETS``) on the medians."""
    return real_models.check_targets(report, TARGETS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write ``vgg16.json`` / ``vgg16.md``; print the markdown."""
    return real_models.main(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
