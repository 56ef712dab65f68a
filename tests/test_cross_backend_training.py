"""The same model, weights and data give the same loss curve on every installed backend.

A tiny MLP (SGD with momentum) and a tiny CNN (Adam) start from identical weights (set with
``minidl.set_random_seed``, whose initializers are plain NumPy) and train a few epochs without
shuffling. Every backend computes in float32, so the curves agree to float32 round-off that
grows slowly with training: ``CURVE_RTOL`` below bounds it.
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl.layers import Conv2D, Dense, Flatten, MaxPooling2D
from minidl.models import Sequential
from minidl.optimizers import SGD, Adam

CURVE_RTOL = 1e-5  # relative difference allowed between two backends' epoch losses
WEIGHT_ATOL = 1e-5  # absolute difference allowed between the final weights

RNG = np.random.default_rng(7)
X_FLAT = RNG.normal(size=(48, 6)).astype("float32")
Y_FLAT = np.eye(3, dtype="float32")[(X_FLAT[:, 0] > 0).astype(int) + (X_FLAT[:, 1] > 1)]
X_IMAGES = RNG.normal(size=(24, 7, 7, 2)).astype("float32")
Y_IMAGES = (X_IMAGES[:, :3, :3, 0].mean(axis=(1, 2)) > 0).astype("float32")


def train_mlp() -> tuple[list[float], list[np.ndarray]]:
    minidl.set_random_seed(11)
    model = Sequential([Dense(8, input_dim=6, activation="tanh"), Dense(3, activation="softmax")])
    model.compile(SGD(learning_rate=0.1, momentum=0.9), "categorical_crossentropy", ["acc"])
    history = model.fit(X_FLAT, Y_FLAT, batch_size=16, epochs=4, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights()


def train_cnn() -> tuple[list[float], list[np.ndarray]]:
    minidl.set_random_seed(12)
    model = Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu", input_shape=(7, 7, 2)),
            MaxPooling2D(2),
            Flatten(),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(Adam(learning_rate=0.01), "binary_crossentropy")
    history = model.fit(X_IMAGES, Y_IMAGES, batch_size=8, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights()


@pytest.mark.parametrize("train", [train_mlp, train_cnn], ids=["mlp", "cnn"])
def test_loss_curves_match_the_numpy_backend(backend, train):
    losses, weights = train()
    K.set_backend("numpy")
    reference_losses, reference_weights = train()
    assert reference_losses[-1] < reference_losses[0]
    np.testing.assert_allclose(losses, reference_losses, rtol=CURVE_RTOL)
    for got, want in zip(weights, reference_weights, strict=True):
        np.testing.assert_allclose(got, want, atol=WEIGHT_ATOL)
