"""Gradients at NaN and inf cells follow one rule on every backend (``backends.interface``).

Hypothesis puts NaN, inf and -inf in random cells of each op's inputs; every op contributes
two losses, ``sum(0.7 * op)`` (a finite incoming gradient) and ``sum((op + 0.3) ** 2)`` (an
incoming gradient that is itself inf or NaN where the op's output is), and the step returns
the gradient of each loss w.r.t. each input. The NaN and inf pattern of every gradient, and
its finite values, must be the same on numpy, theano and tensorflow; the piecewise ops are
also checked on each backend against the rule written out in NumPy. Finite cells are moved
off the kinks (relu at 0, clip bounds, ties in maximum, max and max-pooling), where the
backends may pick different one-sided slopes; the special cells tie freely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import backend as K

from .conftest import installed_backends
from .strategies import arrays_with_specials, shapes

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOLERANCE = {"rtol": 2e-4, "atol": 2e-5}  # float32 steps
UPSTREAM = 0.7  # d sum(UPSTREAM * op) / d op


def _off_kinks(array: np.ndarray, offset: float) -> np.ndarray:
    """``array`` with each finite cell moved by a distinct small amount (specials unchanged)."""
    steps = np.arange(array.size, dtype=np.float64).reshape(array.shape) * 1.37e-3
    return (array + offset + steps).astype(array.dtype)


@st.composite
def _pair(draw: st.DrawFn) -> tuple:
    shape = draw(shapes(2, 2, max_side=4))
    return (
        _off_kinks(draw(arrays_with_specials(shape)), 0.01234),
        _off_kinks(draw(arrays_with_specials(shape)), -0.02718),
    )


@st.composite
def _domain(draw: st.DrawFn) -> tuple:
    """Values at the edge of sqrt's and log's domain: zeros, negatives, inf and NaN."""
    shape = draw(shapes(2, 2, max_side=4))
    array = draw(arrays_with_specials(shape))
    zeros = draw(st.lists(st.integers(0, array.size - 1), max_size=array.size))
    array.reshape(-1)[zeros] = 0.0
    return (array + np.float32(0.0),)  # -0.0 -> 0.0: pow's gradient at -0.0 is left out


@st.composite
def _targets_logits(draw: st.DrawFn, classes: int | None = None) -> tuple:
    shape = draw(shapes(2, 2, max_side=4))
    shape = shape if classes is None else (shape[0], classes)
    raw = draw(arrays_with_specials(shape))
    targets = np.abs(np.nan_to_num(raw, nan=1.0, posinf=1.0, neginf=1.0)) + 0.05
    targets /= targets.sum(axis=-1, keepdims=True)
    return targets.astype(np.float32), draw(arrays_with_specials(shape))


@st.composite
def _images(draw: st.DrawFn) -> tuple:
    batch = draw(st.integers(1, 2))
    return (_off_kinks(draw(arrays_with_specials((batch, 4, 4, 2))), 0.01234),)


@st.composite
def _free_images(draw: st.DrawFn) -> tuple:
    """Images of any size from 3x3 (so every window below fits), with NaN and inf cells."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(3, 7)), draw(st.integers(3, 7)))
    return (_off_kinks(draw(arrays_with_specials((*shape, draw(st.integers(1, 2))))), 0.01234),)


class Group(NamedTuple):
    """Ops over the same inputs, compiled as one step per backend."""

    specs: list[tuple[tuple, str]]
    inputs: st.SearchStrategy
    ops: dict[str, Callable[..., Any]]


MATRIX = ((None, None), "float32")
PIECEWISE = {
    "relu": lambda x, y: K.relu(x),
    "relu_alpha": lambda x, y: K.relu(x, alpha=0.1),
    "relu_max_value": lambda x, y: K.relu(x, max_value=1.0),
    "relu_alpha_max_value": lambda x, y: K.relu(x, alpha=0.1, max_value=1.5),
    "elu": lambda x, y: K.elu(x),
    "elu_alpha": lambda x, y: K.elu(x, 0.5),
    "hard_sigmoid": lambda x, y: K.hard_sigmoid(x),
    "clip": lambda x, y: K.clip(x, -0.5, 1.0),
    "abs": lambda x, y: K.abs(x),
    "maximum": lambda x, y: K.maximum(x, y),
    "minimum": lambda x, y: K.minimum(x, y),
    "maximum_scalar": lambda x, y: K.maximum(x, 0.5),
    "minimum_scalar": lambda x, y: K.minimum(x, -0.5),
}
GROUPS = {
    "elementwise": Group(
        [MATRIX, MATRIX],
        _pair(),
        {
            **PIECEWISE,
            "where": lambda x, y: K.where(K.greater(x, y), x, y * 2.0),
            "softsign": lambda x, y: K.softsign(x),
            "tanh_mul_div": lambda x, y: K.tanh(x) * y / (K.exp(y) + 1.0),
            "softmax": lambda x, y: K.softmax(x),
            "max_rows": lambda x, y: K.max(x, axis=-1),
            "min_columns": lambda x, y: K.min(x, axis=0, keepdims=True),
            "max_all": lambda x, y: K.max(x),
        },
    ),
    "domain": Group(
        [MATRIX],
        _domain(),
        {
            "sqrt": lambda x: K.sqrt(x),
            "log": lambda x: K.log(x),
            # tf's pow differs from NumPy's at -inf ((-inf) ** 0.5 is inf there): kept out
            "pow_fraction": lambda x: K.pow(K.maximum(x, -9.0), 1.5),
            "pow_negative": lambda x: K.pow(K.maximum(x, -9.0), -0.5),
            "reciprocal": lambda x: 1.0 / x,
        },
    ),
    "losses": Group(
        [MATRIX, MATRIX],
        _targets_logits(),
        {
            "bce_from_logits": lambda t, z: K.binary_crossentropy(t, z, from_logits=True),
            "bce_after_sigmoid": lambda t, z: K.binary_crossentropy(t, K.sigmoid(z)),
            "cce_from_logits": lambda t, z: K.categorical_crossentropy(t, z, from_logits=True),
            "cce_after_softmax": lambda t, z: K.categorical_crossentropy(t, K.softmax(z)),
        },
    ),
    "sparse_losses": Group(
        [((None, 3), "float32"), ((None, 3), "float32")],
        _targets_logits(classes=3),
        {
            "from_logits": lambda t, z: K.sparse_categorical_crossentropy(
                K.argmax(t), z, from_logits=True
            ),
            "after_softmax": lambda t, z: K.sparse_categorical_crossentropy(
                K.argmax(t), K.softmax(z)
            ),
        },
    ),
    "pooling": Group(
        [((None, 4, 4, 2), "float32")],
        _images(),
        {
            "max_valid_2x2": lambda x: K.pool2d(x, (2, 2), (2, 2), "valid", "max"),
            "max_same_3x3_s2": lambda x: K.pool2d(x, (3, 3), (2, 2), "same", "max"),
            "max_valid_2x2_s1": lambda x: K.pool2d(x, (2, 2), (1, 1), "valid", "max"),
            "avg_valid_2x2": lambda x: K.pool2d(x, (2, 2), (2, 2), "valid", "avg"),
            "avg_same_3x3_s2": lambda x: K.pool2d(x, (3, 3), (2, 2), "same", "avg"),
            # numpy's lowering takes these slopes at the pooled size (pooled_slopes pass)
            "relu_max_pool": lambda x: K.pool2d(K.relu(x), (2, 2), (2, 2), "valid", "max"),
            "tanh_max_pool": lambda x: K.pool2d(K.tanh(x), (3, 3), (2, 2), "same", "max"),
        },
    ),
    # windows that skip cells (stride > size), start in the padding, or overlap
    "pool_geometries": Group(
        [((None, None, None, None), "float32")],
        _free_images(),
        {
            "max_valid_1x1_s3": lambda x: K.pool2d(x, (1, 1), (3, 3), "valid", "max"),
            "max_valid_3x2_s2x3": lambda x: K.pool2d(x, (3, 2), (2, 3), "valid", "max"),
            "max_same_3x1_s2x1": lambda x: K.pool2d(x, (3, 1), (2, 1), "same", "max"),
            "max_same_2x3_s1x2": lambda x: K.pool2d(x, (2, 3), (1, 2), "same", "max"),
            "avg_same_3x2_s2": lambda x: K.pool2d(x, (3, 2), (2, 2), "same", "avg"),
        },
    ),
}
LOSSES = {
    "linear": lambda out: K.sum(out * UPSTREAM),
    "square": lambda out: K.sum(K.square(out + 0.3)),
}
_steps: dict[tuple[str, str], Callable[..., list]] = {}


def _step(group_name: str) -> Callable[..., list]:
    """Per op, loss and input: the gradient, in the order of ``_labels``."""
    key = (K.name(), group_name)
    if key not in _steps:
        group = GROUPS[group_name]

        def step(*inputs):
            grads = []
            for op in group.ops.values():
                out = op(*inputs)
                for loss in LOSSES.values():
                    grads += K.gradients(loss(out), list(inputs))
            return grads, []

        _steps[key] = K.function(step, group.specs, name=f"nan_grad_{group_name}")
    return _steps[key]


def _labels(group_name: str) -> list[str]:
    group = GROUPS[group_name]
    return [
        f"d {loss} loss of {op} / d input {j}"
        for op in group.ops
        for loss in LOSSES
        for j in range(len(group.specs))
    ]


def _gradients(group_name: str, arrays: tuple) -> dict[str, np.ndarray]:
    values = _step(group_name)(*arrays)
    return {label: np.asarray(v, np.float64) for label, v in zip(_labels(group_name), values)}


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs two installed backends")
@pytest.mark.parametrize("group_name", list(GROUPS))
@SETTINGS
@given(data=st.data())
def test_backends_agree_on_gradients_at_nan_and_inf(group_name, data):
    arrays = data.draw(GROUPS[group_name].inputs)
    results = {}
    for name in installed_backends():
        K.set_backend(name)
        results[name] = _gradients(group_name, arrays)
    first, *others = results
    for other in others:
        for label, want in results[first].items():
            np.testing.assert_allclose(
                results[other][label],
                want,
                equal_nan=True,
                err_msg=f"{label}: {other} vs {first} for inputs {arrays!r}",
                **TOLERANCE,
            )


def _slope(name: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d op / d x and d op / d y for a piecewise op, written out with the NaN rule."""
    zeros = np.zeros_like(x)
    x_nan, y_nan = np.isnan(x), np.isnan(y)
    with np.errstate(all="ignore"):
        if name.startswith("relu"):
            alpha = 0.1 if "alpha" in name else 0.0
            cap = None if "max_value" not in name else (1.5 if alpha else 1.0)
            dx = np.where(x > 0, 1.0, alpha)
            if cap is not None:
                dx = np.where(x >= cap, 0.0, dx)
        elif name.startswith("elu"):
            alpha = 0.5 if name == "elu_alpha" else 1.0
            dx = np.where(x > 0, 1.0, alpha * np.exp(x))
        elif name == "hard_sigmoid":
            dx = np.where((x > -2.5) & (x < 2.5), 0.2, 0.0)
        elif name == "clip":
            dx = np.where((x >= -0.5) & (x <= 1.0), 1.0, 0.0)
        elif name == "abs":
            dx = np.sign(x)
        elif name.endswith("scalar"):
            bound = 0.5 if name.startswith("maximum") else -0.5
            dx = (x >= bound) if name.startswith("maximum") else (x <= bound)
        else:  # maximum, minimum: the NaN operand is picked; else x on ties
            x_wins = (x >= y) if name == "maximum" else (x <= y)
            x_wins = (x_wins | x_nan) & ~(y_nan & ~x_nan)
            return np.where(x_nan, np.nan, x_wins), np.where(y_nan, np.nan, ~x_wins & ~x_nan)
    return np.where(x_nan, np.nan, dx), zeros


@SETTINGS
@given(arrays=_pair())
def test_piecewise_gradients_are_nan_at_nan_cells_and_exact_elsewhere(backend, arrays):
    x, y = (a.astype(np.float64) for a in arrays)
    got = _gradients("elementwise", arrays)
    for name in PIECEWISE:
        for j, want in enumerate(_slope(name, x, y)):
            np.testing.assert_allclose(
                got[f"d linear loss of {name} / d input {j}"],
                UPSTREAM * np.asarray(want, np.float64),
                equal_nan=True,
                err_msg=f"{name} on {backend}, d/d input {j}, for x={x!r}, y={y!r}",
                **TOLERANCE,
            )


def test_max_pool_gradient_of_a_window_of_minus_inf_and_of_an_uncovered_nan(backend):
    # A window of -inf ties: its gradient goes to its first cell (tf's kernel sent it nowhere).
    # A NaN cell that no window covers (cropped by "valid"), where no window holds NaN, is
    # not used: its gradient is 0 (tf's gave NaN; numpy and theano give 0).
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1) * 0.01
    x[0, :2, :2, 0] = -np.inf
    x[0, 4, 1, 0] = np.nan
    step = K.function(
        lambda v: (
            K.gradients(K.sum(K.pool2d(v, (2, 2), (2, 2), "valid", "max") * UPSTREAM), [v]),
            [],
        ),
        [((None, 5, 5, 1), "float32")],
    )
    want = np.zeros((5, 5))
    want[0, 0] = want[1, 3] = want[3, 1] = want[3, 3] = np.float32(UPSTREAM)
    np.testing.assert_array_equal(np.asarray(step(x)[0], np.float64)[0, ..., 0], want)
