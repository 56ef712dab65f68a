"""Activations by name (values on every backend) and NumPy initializers (seeds, statistics)."""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import activations, initializers
from minidl import backend as K


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


NUMPY_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "hard_sigmoid": lambda z: np.clip(0.2 * z + 0.5, 0, 1),
    "tanh": np.tanh,
    "softmax": np_softmax,
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "softsign": lambda z: z / (1 + np.abs(z)),
    "exponential": np.exp,
    "selu": lambda z: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(z)),
}


def test_every_activation_matches_numpy(backend):
    assert sorted(NUMPY_ACTIVATIONS) == sorted(activations.ACTIVATIONS)
    z = np.linspace(-4, 4, 24).reshape(4, 6).astype("float32")
    names = sorted(NUMPY_ACTIVATIONS)

    def step(x):
        return [activations.get(name)(x) for name in names], []

    outputs = K.function(step, [((None, 6), "float32")])(z)
    for name, got in zip(names, outputs):
        np.testing.assert_allclose(got, NUMPY_ACTIVATIONS[name](z), rtol=1e-5, atol=1e-6)


def test_activation_lookup_and_serialization():
    assert activations.get(None) is activations.linear
    assert activations.get(" ReLU ") is activations.relu
    assert activations.get(np.tanh) is np.tanh
    for name, fn in activations.ACTIVATIONS.items():
        assert activations.get(activations.serialize(fn)) is fn and fn.__name__ == name
    with pytest.raises(ValueError, match=r"Unknown activation function 'swish'.*Valid names: elu"):
        activations.get("swish")
    with pytest.raises(TypeError, match=r"name, a callable or None.*int"):
        activations.get(3)


# ------------------------------------------------------------------------ initializers


def test_seeded_initializers_repeat_and_unseeded_follow_set_random_seed():
    for name in initializers.INITIALIZERS:
        if name in ("zeros", "ones", "constant", "identity"):
            continue
        init = initializers.get({"class_name": name, "config": {"seed": 5}})
        np.testing.assert_array_equal(init((4, 3)), init((4, 3)))
        minidl.set_random_seed(3)
        first = initializers.get(name)((4, 3))
        minidl.set_random_seed(3)
        np.testing.assert_array_equal(initializers.get(name)((4, 3)), first)
        assert first.dtype == np.float32


def test_constant_initializers():
    np.testing.assert_array_equal(initializers.get("zeros")((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.get("ones")((2,), "float64"), np.ones(2))
    assert initializers.get("ones")((2,), "float64").dtype == np.float64
    constant = initializers.get({"class_name": "Constant", "config": {"value": 0.5}})
    np.testing.assert_array_equal(constant((3,)), [0.5, 0.5, 0.5])


@pytest.mark.parametrize(
    "name, shape, check",
    [
        ("glorot_uniform", (200, 300), lambda w: np.abs(w).max() <= np.sqrt(6 / 500)),
        ("glorot_uniform", (200, 300), lambda w: abs(w.std() - np.sqrt(2 / 500)) < 2e-3),
        ("glorot_normal", (200, 300), lambda w: abs(w.std() - np.sqrt(2 / 500)) < 2e-3),
        ("he_normal", (3, 3, 20, 400), lambda w: abs(w.std() - np.sqrt(2 / 180)) < 3e-3),
        ("he_uniform", (3, 3, 20, 400), lambda w: np.abs(w).max() <= np.sqrt(6 / 180)),
        ("lecun_normal", (300, 200), lambda w: abs(w.std() - np.sqrt(1 / 300)) < 2e-3),
        ("lecun_uniform", (300, 200), lambda w: np.abs(w).max() <= np.sqrt(3 / 300)),
        ("normal", (300, 200), lambda w: abs(w.std() - 0.05) < 2e-3 and abs(w.mean()) < 1e-3),
        ("uniform", (300, 200), lambda w: w.min() >= -0.05 and w.max() < 0.05),
        ("truncated_normal", (300, 200), lambda w: np.abs(w).max() <= 0.1),
    ],
)
def test_initializer_statistics(name, shape, check):
    weights = initializers.get({"class_name": name, "config": {"seed": 0}})(shape)
    assert weights.shape == shape
    assert check(weights)


def test_fans_serialization_and_lookup():
    assert initializers.compute_fans((5, 7)) == (5, 7)
    assert initializers.compute_fans((3, 3, 8, 16)) == (72, 144)
    for name in initializers.INITIALIZERS:
        init = initializers.get(name)
        spec = initializers.serialize(init)
        again = initializers.get(spec)
        assert type(again) is type(init) and again.get_config() == init.get_config()
    assert initializers.get("GlorotUniform").__class__ is initializers.GlorotUniform
    assert initializers.get(None).__class__ is initializers.GlorotUniform

    def custom(shape, dtype="float32"):
        return np.full(shape, 2.0, dtype=dtype)

    assert initializers.get(custom) is custom and initializers.serialize(custom) == "custom"
    variance = initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=1)
    assert initializers.get(initializers.serialize(variance)).get_config() == {
        "scale": 2.0,
        "mode": "fan_out",
        "distribution": "uniform",
        "seed": 1,
    }


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: initializers.get("xavier"),
            ValueError,
            r"Unknown initializer 'xavier'.*he_normal",
        ),
        (lambda: initializers.get({"class_name": "Hyperbolic"}), ValueError, r"'Hyperbolic'"),
        (lambda: initializers.get(3), TypeError, r"name, a dict, or a callable"),
        (lambda: initializers.RandomNormal(stddev=-1), ValueError, r"`stddev` must be >= 0"),
        (lambda: initializers.RandomUniform(1, 0), ValueError, r"`maxval` must be >= `minval`"),
        (lambda: initializers.VarianceScaling(mode="fan"), ValueError, r"`mode` must be one of"),
        (lambda: initializers.VarianceScaling(0), ValueError, r"`scale` must be positive"),
        (
            lambda: initializers.VarianceScaling(distribution="cauchy"),
            ValueError,
            r"`distribution` must be one of",
        ),
        (lambda: initializers.HeNormal(seed="1"), ValueError, r"`seed` of HeNormal.*seed='1'"),
    ],
)
def test_bad_initializer_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()
