"""End-to-end training on scikit-learn's 8x8 digits with the numpy backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

import minidl
from minidl.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from minidl.models import Sequential


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.data / 16.0).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], data.target[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def test_mlp_reaches_high_accuracy_on_digits(digits):
    x_train, y_train, x_test, y_test = digits
    minidl.set_random_seed(0)
    np.random.seed(0)
    model = Sequential(
        [
            Dense(64, input_shape=(64,), activation="relu"),
            Dropout(0.1, seed=1),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=15, verbose=0, validation_split=0.1)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.93, history.history
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    predicted = model.predict(x_test).argmax(axis=1)
    assert np.mean(predicted == y_test) == pytest.approx(accuracy)


def test_small_cnn_reaches_high_accuracy_on_digits(digits):
    x_train, y_train, x_test, y_test = digits
    minidl.set_random_seed(0)
    np.random.seed(0)
    model = Sequential(
        [
            Conv2D(16, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
            MaxPooling2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    images = x_train.reshape(-1, 8, 8, 1)
    model.fit(images, np.eye(10)[y_train], batch_size=32, epochs=10, verbose=0)
    _, accuracy = model.evaluate(x_test.reshape(-1, 8, 8, 1), np.eye(10)[y_test], verbose=0)
    assert accuracy >= 0.9
