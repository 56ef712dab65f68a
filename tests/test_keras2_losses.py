"""Keras 2's remaining losses against Keras 2.2.4's formulas in NumPy, on every backend, and
training with each of them."""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl import losses
from minidl.layers import Dense
from minidl.models import Sequential

EPS = 1e-7
RNG = np.random.default_rng(13)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def l2n(x):
    return x / np.sqrt(np.maximum((x**2).sum(axis=-1, keepdims=True), EPS))


REFERENCE = {
    "mape": lambda t, p: 100 * (np.abs(t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
    "msle": lambda t, p: (
        (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2
    ).mean(-1),
    "squared_hinge": lambda t, p: (np.maximum(1 - t * p, 0) ** 2).mean(-1),
    "hinge": lambda t, p: np.maximum(1 - t * p, 0).mean(-1),
    "categorical_hinge": lambda t, p: np.maximum(((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0),
    "logcosh": lambda t, p: np.log(np.cosh(p - t)).mean(-1),
    "kld": lambda t, p: (np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1))).sum(
        -1
    ),
    "poisson": lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
    "cosine_proximity": lambda t, p: -(l2n(t) * l2n(p)).sum(-1),
}


def data_for(name):
    if name in ("hinge", "squared_hinge"):
        return RNG.choice([-1.0, 1.0], size=(6, 4)), RNG.normal(size=(6, 4))
    if name in ("categorical_hinge", "kld"):
        return np.eye(4)[RNG.integers(0, 4, 6)], softmax(RNG.normal(size=(6, 4)))
    if name in ("poisson", "msle"):
        return RNG.uniform(0, 3, size=(6, 4)), RNG.uniform(0.1, 3, size=(6, 4))
    return RNG.normal(size=(6, 4)), RNG.normal(size=(6, 4))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_loss_values_match_keras_2(backend, name):
    y_true, y_pred = (a.astype("float32") for a in data_for(name))
    fn = losses.get(name)
    step = K.function(
        lambda t, p: ([fn(t, p)], []), [((None, 4), "float32"), ((None, 4), "float32")]
    )
    got = step(y_true, y_pred)[0]
    assert got.shape == (6,)
    np.testing.assert_allclose(got, REFERENCE[name](y_true, y_pred), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mape", "logcosh", "categorical_hinge", "kld", "poisson"])
def test_training_lowers_each_loss(backend, name):
    x = RNG.normal(size=(32, 3)).astype("float32")
    y = np.eye(4)[(x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)].astype("float32")
    if name in ("mape", "logcosh", "poisson"):
        y = y + 1.0  # positive targets away from zero
    activation = "softmax" if name in ("categorical_hinge", "kld") else "softplus"
    minidl.set_random_seed(0)
    model = Sequential([Dense(4, activation=activation, input_shape=(3,))])
    model.compile(minidl.optimizers.Adam(0.05), name, metrics=[name])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert name in history.history  # the metric is logged under the name asked for


def test_keras_2_initializer_names():
    from minidl import initializers

    q = initializers.get("orthogonal")((12, 5), "float64")
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-12)
    conv = initializers.Orthogonal(gain=2.0, seed=3)((3, 3, 2, 4), "float64").reshape(-1, 4)
    np.testing.assert_allclose(conv.T @ conv, 4.0 * np.eye(4), atol=1e-12)
    wide = initializers.Orthogonal(seed=3)((2, 6), "float64")
    np.testing.assert_allclose(wide @ wide.T, np.eye(2), atol=1e-12)
    assert np.array_equal(initializers.get("identity")((3, 3)), np.eye(3))
    assert initializers.get("zero")((2,)).tolist() == [0, 0]
    assert initializers.get("one")((2,)).tolist() == [1, 1]
    again = initializers.get(initializers.serialize(initializers.Orthogonal(1.5, seed=2)))
    assert np.array_equal(again((4, 4)), initializers.Orthogonal(1.5, seed=2)((4, 4)))
    with pytest.raises(ValueError, match="square 2-D"):
        initializers.get("identity")((3, 4))


def test_orthogonal_kernel_trains(backend):
    minidl.set_random_seed(0)
    model = Sequential([Dense(3, kernel_initializer="orthogonal", input_shape=(3,))])
    kernel = model.get_weights()[0]
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(3), atol=1e-5)


def test_sparse_top_k_categorical_accuracy(backend):
    from minidl import metrics

    scores = RNG.normal(size=(20, 6)).astype("float32")
    labels = RNG.integers(0, 6, size=20)
    step = K.function(
        lambda t, p: ([metrics.sparse_top_k_categorical_accuracy(t, p, k=2)], []),
        [((None,), "int64"), ((None, 6), "float32")],
    )
    higher = (scores > scores[np.arange(20), labels][:, None]).sum(axis=1)
    want = (higher < 2).astype("float32")
    assert 0 < want.mean() < 1
    np.testing.assert_array_equal(step(labels, scores)[0], want)
    assert metrics.get("sparse_top_k_categorical_accuracy") is (
        metrics.sparse_top_k_categorical_accuracy
    )
