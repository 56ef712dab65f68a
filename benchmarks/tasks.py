"""The paper's three tasks: their shapes, simulated data, shared initial weights and schedules.

Every row of a task starts from the same weights (drawn here once, in the Keras layout:
dense kernels ``(in, out)``, conv kernels ``(kh, kw, in, out)``, channels-last images) and is
fed the same pre-sliced NumPy batches, so the first-step losses of all rows must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.harness import Schedule


@dataclass(frozen=True)
class MLPTask:
    """Fig. 5: 784 -> 500 tanh -> 10 softmax, NLL, plain SGD."""

    n_in: int = 784
    n_hidden: int = 500
    n_out: int = 10
    batch: int = 60
    n_examples: int = 6000
    learning_rate: float = 0.01
    dtype: str = "float32"

    @property
    def label(self) -> str:
        return f"mlp_b{self.batch}"


@dataclass(frozen=True)
class ConvTask:
    """Fig. 6 "ConvLarge": 256x256 grey -> conv 6@7x7 tanh -> pool 5 -> conv 16@7x7 tanh -> pool 4
    -> dense 120 tanh -> dense 10 softmax, NLL, plain SGD."""

    image: int = 256
    channels: int = 1
    kernel: int = 7
    filters: tuple[int, int] = (6, 16)
    pools: tuple[int, int] = (5, 4)
    hidden: int = 120
    n_out: int = 10
    batch: int = 1
    n_examples: int = 60
    learning_rate: float = 0.01
    dtype: str = "float32"

    @property
    def label(self) -> str:
        return f"conv_b{self.batch}"

    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """(height, width, channels) after conv1, pool1, conv2, pool2."""
        size, shapes = self.image, []
        for filters, pool in zip(self.filters, self.pools):
            size = size - self.kernel + 1
            shapes.append((size, size, filters))
            size //= pool
            shapes.append((size, size, filters))
        return shapes

    @property
    def flat(self) -> int:
        height, width, channels = self.feature_shapes()[-1]
        return height * width * channels


# Fig. 7's expressions, written once; they work on arrays and on every framework's tensors.
ELEMWISE = {
    "a+1": lambda a, b: a + 1,
    "2*a + 3*b": lambda a, b: 2 * a + 3 * b,
    "a**2 + b**2 + 2*a*b": lambda a, b: a**2 + b**2 + 2 * a * b,
    "2*a + b**10": lambda a, b: 2 * a + b**10,
}


@dataclass(frozen=True)
class ElemwiseTask:
    """Fig. 7: one element-wise expression over float vectors of several sizes."""

    expression: str
    sizes: tuple[int, ...]
    dtype: str = "float32"

    @property
    def label(self) -> str:
        return "elemwise " + self.expression


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Uniform in +-sqrt(6 / (fan_in + fan_out)), the paper's (and Keras's default) scaling."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def mlp_weights(task: MLPTask, seed: int = 0) -> list[np.ndarray]:
    """Initial ``[W1, b1, W2, b2]`` shared by every row."""
    rng = np.random.default_rng(seed)
    return [
        glorot_uniform(rng, (task.n_in, task.n_hidden), task.dtype),
        np.zeros(task.n_hidden, task.dtype),
        glorot_uniform(rng, (task.n_hidden, task.n_out), task.dtype),
        np.zeros(task.n_out, task.dtype),
    ]


def conv_weights(task: ConvTask, seed: int = 0) -> list[np.ndarray]:
    """Initial ``[K1, b1, K2, b2, W3, b3, W4, b4]`` (Keras layout) shared by every row."""
    rng = np.random.default_rng(seed)
    k, (f1, f2) = task.kernel, task.filters
    shapes = [
        (k, k, task.channels, f1),
        (k, k, f1, f2),
        (task.flat, task.hidden),
        (task.hidden, task.n_out),
    ]
    weights = []
    for shape in shapes:
        weights.append(glorot_uniform(rng, shape, task.dtype))
        weights.append(np.zeros(shape[-1], task.dtype))
    return weights


@dataclass
class Dataset:
    """Inputs, one-hot targets and integer labels, whole and pre-sliced into batches."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    batch: int

    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Contiguous ``(x, y_onehot)`` batches in order."""
        return [
            (self.x[i : i + self.batch], self.y[i : i + self.batch])
            for i in range(0, len(self.x) - self.batch + 1, self.batch)
        ]

    def label_batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Contiguous ``(x, integer_labels)`` batches in order."""
        return [
            (self.x[i : i + self.batch], self.labels[i : i + self.batch])
            for i in range(0, len(self.x) - self.batch + 1, self.batch)
        ]


def simulated_data(
    input_shape: tuple[int, ...], n_out: int, n_examples: int, batch: int, dtype: str, seed: int
) -> Dataset:
    """Random inputs in [0, 1) and random labels, as in the paper's simulated MLP data."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_examples, *input_shape), dtype=np.float64).astype(dtype)
    labels = rng.integers(0, n_out, size=n_examples)
    y = np.eye(n_out, dtype=dtype)[labels]
    return Dataset(x, y, labels.astype(np.int64), batch)


def mlp_data(task: MLPTask, seed: int = 1) -> Dataset:
    """The paper's 6000 simulated 784-dim examples."""
    return simulated_data((task.n_in,), task.n_out, task.n_examples, task.batch, task.dtype, seed)


def conv_data(task: ConvTask, seed: int = 2) -> Dataset:
    """Random 256x256 grey images (channels-last) with random labels."""
    shape = (task.image, task.image, task.channels)
    return simulated_data(shape, task.n_out, task.n_examples, task.batch, task.dtype, seed)


@dataclass(frozen=True)
class Plan:
    """Which task configurations run and how hard each is measured."""

    mlp: Schedule
    conv_batches: tuple[int, ...]
    conv: dict[int, Schedule]
    conv_examples: dict[int, int]
    elemwise_sizes: tuple[int, ...]
    elemwise_budget: int  # elements per timed block: calls = budget // size, at most max_calls
    elemwise_repeats: int
    elemwise_max_calls: int = 200


QUICK = Plan(
    mlp=Schedule(steps_per_block=10, repeats=9, pause_s=0.1),
    conv_batches=(1,),  # batch 60 (seconds per step for some rows) only in the full run
    conv={1: Schedule(steps_per_block=3, repeats=5, pause_s=0.1)},
    conv_examples={1: 8},
    elemwise_sizes=(1_000, 100_000, 1_000_000),
    elemwise_budget=2_000_000,
    elemwise_repeats=5,
)

FULL = Plan(
    mlp=Schedule(steps_per_block=30, repeats=11, pause_s=0.1),
    conv_batches=(1, 60),
    conv={
        1: Schedule(steps_per_block=8, repeats=7, pause_s=0.1),
        60: Schedule(steps_per_block=1, repeats=7, pause_s=0.1),  # PyTensor rows vary 2x
    },
    conv_examples={1: 20, 60: 120},
    elemwise_sizes=(1_000, 10_000, 100_000, 1_000_000, 10_000_000),
    elemwise_budget=10_000_000,
    elemwise_repeats=7,
    elemwise_max_calls=1000,
)

TINY = Plan(
    mlp=Schedule(steps_per_block=2, repeats=2, warmup_blocks=0),
    conv_batches=(1,),
    conv={1: Schedule(steps_per_block=1, repeats=2, warmup_blocks=0)},
    conv_examples={1: 2},
    elemwise_sizes=(1_000, 10_000),
    elemwise_budget=20_000,
    elemwise_repeats=2,
)
