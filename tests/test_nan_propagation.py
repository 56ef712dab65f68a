"""NaN and inf go through every op as NumPy's would, on every backend, and reach the loss.

Each op runs inside a compiled ``K.function`` step (the path training takes; tensorflow's
grappler and PyTensor's rewrites act there) on arrays where hypothesis puts NaN, inf and -inf
in random cells. References are plain NumPy in float64, never a backend. Before the fix,
theano's ``relu``/``maximum``/``minimum`` and max-pooling and tensorflow's fused ``relu``,
``max_pool``, ``softmax`` and ``argmax`` turned NaN into numbers, so a NaN input gave a
finite loss while the weights silently became NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import backend as K
from minidl.callbacks import TerminateOnNaN
from minidl.layers import Conv2D, Dense, Flatten, MaxPooling2D
from minidl.models import Sequential

from . import naive
from .conftest import installed_backends
from .strategies import arrays_with_specials, shapes

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def _np(fn):
    """Run a float64 NumPy reference without its invalid-value warnings."""

    def run(*arrays):
        with np.errstate(all="ignore"):
            return fn(*(np.asarray(a, np.float64) for a in arrays))

    return run


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _elu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _relu(z: np.ndarray, alpha: float = 0.0, cap: float | None = None) -> np.ndarray:
    out = np.where(z <= 0, alpha * z if alpha else 0.0, z)  # NaN fails ``z <= 0``: stays NaN
    return out if cap is None else np.minimum(out, cap)


# name -> (K expression of (x, y), NumPy reference of (x, y))
ELEMENTWISE = {
    "relu": (lambda x, y: K.relu(x), lambda x, y: _relu(x)),
    "relu_alpha": (lambda x, y: K.relu(x, alpha=0.1), lambda x, y: _relu(x, 0.1)),
    "relu_max_value": (lambda x, y: K.relu(x, max_value=1.0), lambda x, y: _relu(x, 0.0, 1.0)),
    "elu": (lambda x, y: K.elu(x), lambda x, y: _elu(x)),
    "hard_sigmoid": (lambda x, y: K.hard_sigmoid(x), lambda x, y: np.clip(0.2 * x + 0.5, 0, 1)),
    "sigmoid": (lambda x, y: K.sigmoid(x), lambda x, y: 0.5 * (1 + np.tanh(x / 2))),
    "tanh": (lambda x, y: K.tanh(x), lambda x, y: np.tanh(x)),
    "softplus": (lambda x, y: K.softplus(x), lambda x, y: np.logaddexp(0, x)),
    "softmax": (lambda x, y: K.softmax(x), lambda x, y: _softmax(x)),
    "abs": (lambda x, y: K.abs(x), lambda x, y: np.abs(x)),
    "sign": (lambda x, y: K.sign(x), lambda x, y: np.sign(x)),
    "square": (lambda x, y: K.square(x), lambda x, y: np.square(x)),
    "exp": (lambda x, y: K.exp(x), lambda x, y: np.exp(x)),
    "round": (lambda x, y: K.round(x), lambda x, y: np.round(x)),
    "clip": (lambda x, y: K.clip(x, -0.5, 0.5), lambda x, y: np.clip(x, -0.5, 0.5)),
    "maximum": (lambda x, y: K.maximum(x, y), lambda x, y: np.maximum(x, y)),
    "minimum": (lambda x, y: K.minimum(x, y), lambda x, y: np.minimum(x, y)),
    "max_rows": (lambda x, y: K.max(x, axis=-1), lambda x, y: np.max(x, axis=-1)),
    "min_rows": (lambda x, y: K.min(x, axis=-1), lambda x, y: np.min(x, axis=-1)),
    "max_all": (lambda x, y: K.max(x), lambda x, y: np.max(x)),
    "sum_rows": (lambda x, y: K.sum(x, axis=-1), lambda x, y: np.sum(x, axis=-1)),
    "mean_all": (lambda x, y: K.mean(x), lambda x, y: np.mean(x)),
    "argmax": (lambda x, y: K.argmax(x), lambda x, y: np.argmax(x, axis=-1)),
    "where": (
        lambda x, y: K.where(K.greater(x, y), x, y),
        lambda x, y: np.where(x > y, x, y),
    ),
}
POOLS = {
    "max_valid_2x2": ((2, 2), (2, 2), "valid", "max"),
    "max_same_3x3_s2": ((3, 3), (2, 2), "same", "max"),
    "max_valid_2x2_s1": ((2, 2), (1, 1), "valid", "max"),
    "avg_valid_2x2": ((2, 2), (2, 2), "valid", "avg"),
    "avg_same_3x3_s2": ((3, 3), (2, 2), "same", "avg"),
}
_steps: dict[tuple[str, str], object] = {}


def _step(kind: str):
    """One compiled step per backend and kind, reused by every hypothesis example."""
    key = (K.name(), kind)
    if key not in _steps:
        if kind == "elementwise":
            specs = [((None, None), "float32"), ((None, None), "float32")]
            _steps[key] = K.function(
                lambda x, y: ([build(x, y) for build, _ in ELEMENTWISE.values()], []), specs
            )
        else:  # pooling; the fixed 4x4 size takes theano's block-pool path as well
            _steps[key] = K.function(
                lambda x: ([K.pool2d(x, *args) for args in POOLS.values()], []),
                [((None, 4, 4, 2), "float32")],
            )
    return _steps[key]


@settings(SETTINGS)
@given(data=st.data())
def test_elementwise_ops_propagate_nan_and_inf_like_numpy(backend, data):
    shape = data.draw(shapes(2, 2, max_side=5))
    x = data.draw(arrays_with_specials(shape))
    y = data.draw(arrays_with_specials(shape))
    outputs = _step("elementwise")(x, y)
    for (name, (_, reference)), got in zip(ELEMENTWISE.items(), outputs):
        expected = _np(reference)(x, y)
        np.testing.assert_allclose(
            np.asarray(got, np.float64),
            expected,
            equal_nan=True,
            err_msg=f"{name} on {backend} for x={x!r}, y={y!r}",
            **TOLERANCE,
        )


def test_a_max_pool_window_of_minus_inf_gives_minus_inf(backend):
    # tf's max-pool kernel returns the lowest finite float for such a window (hypothesis found
    # it); with and without a NaN elsewhere in the batch, which takes another path on tensorflow
    x = np.zeros((2, 4, 4, 2), np.float32)
    x[:, 1:3, 2:4, 0] = -np.inf
    x[1, 0, 0, 1] = np.nan
    for (name, args), got in zip(POOLS.items(), _step("pool")(x)):
        with np.errstate(all="ignore"):
            expected = naive.pool2d(x.astype(np.float64), *args)
        np.testing.assert_array_equal(np.asarray(got, np.float64), expected, err_msg=name)
    clean = x[:1]
    for (name, args), got in zip(POOLS.items(), _step("pool")(clean)):
        expected = naive.pool2d(clean.astype(np.float64), *args)
        np.testing.assert_array_equal(np.asarray(got, np.float64), expected, err_msg=name)


@settings(SETTINGS)
@given(data=st.data())
def test_pooling_propagates_nan_and_inf_like_numpy(backend, data):
    batch = data.draw(st.integers(1, 2))
    x = data.draw(arrays_with_specials((batch, 4, 4, 2)))
    for (name, args), got in zip(POOLS.items(), _step("pool")(x)):
        with np.errstate(all="ignore"):
            expected = naive.pool2d(x.astype(np.float64), *args)
        np.testing.assert_allclose(
            np.asarray(got, np.float64),
            expected,
            equal_nan=True,
            err_msg=f"{name} on {backend} for x={x!r}",
            **TOLERANCE,
        )


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs two installed backends")
@settings(SETTINGS, max_examples=10)
@given(data=st.data())
def test_backends_agree_on_special_values(data):
    shape = data.draw(shapes(2, 2, max_side=5))
    x = data.draw(arrays_with_specials(shape))
    y = data.draw(arrays_with_specials(shape))
    results = {}
    for name in installed_backends():
        K.set_backend(name)
        results[name] = [np.asarray(v, np.float64) for v in _step("elementwise")(x, y)]
    first, *others = results
    for other in others:
        for op, a, b in zip(ELEMENTWISE, results[first], results[other]):
            np.testing.assert_allclose(
                b, a, equal_nan=True, err_msg=f"{op}: {first} vs {other}", **TOLERANCE
            )


def _model(kind: str) -> Sequential:
    if kind == "dense":
        return Sequential(
            [
                Dense(4, activation="relu", input_shape=(3,), kernel_initializer="ones"),
                Dense(1, kernel_initializer="ones"),
            ]
        )
    return Sequential(
        [
            Conv2D(2, (3, 3), activation="relu", input_shape=(6, 6, 1), kernel_initializer="ones"),
            MaxPooling2D(),
            Flatten(),
            Dense(1, kernel_initializer="ones"),
        ]
    )


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_nan_input_gives_nan_loss_and_terminate_on_nan_fires(backend, kind):
    model = _model(kind)
    model.compile("sgd", "mse")
    x = np.ones((4, 3) if kind == "dense" else (4, 6, 6, 1), "float32")
    x.reshape(4, -1)[1, 2] = np.nan  # one NaN in one sample, behind a relu
    y = np.ones((4, 1), "float32")
    assert np.isnan(model.evaluate(x, y, verbose=0))
    assert np.isnan(model.predict(x, verbose=0)[1]).all()
    assert np.isfinite(model.predict(x, verbose=0)[[0, 2, 3]]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1  # stopped after the first epoch
    assert np.isnan(history.history["loss"][0])


def test_nan_input_corrupts_the_same_weights_on_every_backend():
    if len(installed_backends()) < 2:
        pytest.skip("needs two installed backends")
    patterns = {}
    for name in installed_backends():
        K.set_backend(name)
        model = _model("conv")
        model.compile("sgd", "mse")
        x = np.ones((4, 6, 6, 1), "float32")
        x[1, 2, 2, 0] = np.nan
        model.train_on_batch(x, np.ones((4, 1), "float32"))
        patterns[name] = [np.isnan(w).tolist() for w in model.get_weights()]
    first, *others = patterns
    for other in others:
        assert patterns[other] == patterns[first], f"{first} vs {other}"


@pytest.mark.parametrize(
    ("activation", "loss", "units"),
    [("softmax", "categorical_crossentropy", 3), ("sigmoid", "binary_crossentropy", 1)],
)
def test_nan_input_gives_nan_cross_entropy(backend, activation, loss, units):
    model = Sequential(
        [Dense(4, activation="relu", input_shape=(3,)), Dense(units, activation=activation)]
    )
    model.compile("sgd", loss)
    x = np.ones((4, 3), "float32")
    x[2, 0] = np.nan
    y = np.zeros((4, units), "float32")
    y[:, 0] = 1
    assert np.isnan(model.evaluate(x, y, verbose=0))
    assert np.isnan(model.train_on_batch(x, y))
    assert all(np.isnan(w).any() for w in model.get_weights())
