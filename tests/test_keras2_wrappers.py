"""Keras 2 scikit-learn wrapper behaviour: images as X, one-hot y, ``.model`` after fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from minidl.layers import Conv2D, Dense, Flatten
from minidl.models import Sequential
from minidl.utils import to_categorical
from minidl.wrappers import KerasClassifier, KerasRegressor

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(48, 5, 5, 1)).astype("float32")
LABELS = (IMAGES[:, :2].mean(axis=(1, 2, 3)) > IMAGES[:, 3:].mean(axis=(1, 2, 3))).astype(int)


def make_cnn(filters=3):
    model = Sequential(
        [
            Conv2D(filters, (3, 3), activation="relu", input_shape=(5, 5, 1)),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model


def test_images_and_one_hot_targets_with_build_fn(backend):
    y = to_categorical(LABELS, 2)
    clf = KerasClassifier(build_fn=make_cnn, epochs=3, batch_size=8, random_state=0)
    assert clf.model is None  # before fit: the parameter (None: build_fn was given)
    clf.fit(IMAGES, y)
    assert clf.model is clf.model_ and clf.model.output_shape == (None, 2)
    assert clf.model.count_params() == make_cnn().count_params()
    assert clf.classes_.tolist() == [0, 1] and clf.input_shape_ == (5, 5, 1)
    proba = clf.predict_proba(IMAGES)
    assert proba.shape == (48, 2)
    np.testing.assert_allclose(proba, clf.model.predict(IMAGES), rtol=1e-5)
    assert set(clf.predict(IMAGES)) <= {0, 1}
    assert 0.0 <= clf.score(IMAGES, y) <= 1.0
    assert clf.score(IMAGES, y) == clf.score(IMAGES, LABELS)
    assert clf.get_params()["build_fn"] is make_cnn and clf.get_params()["model"] is None
    copy = clone(clf)
    assert copy.model is None and copy.build_fn is make_cnn
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(IMAGES), proba, rtol=1e-6)
    with pytest.raises(ValueError, match=r"samples of shape \(5, 5, 1\)"):
        clf.predict(IMAGES[:, :, :4])


def test_model_parameter_form_and_cross_validation():
    clf = KerasClassifier(model=make_cnn, epochs=1, batch_size=16, random_state=0)
    assert clf.model is make_cnn
    scores = cross_val_score(clf, IMAGES, LABELS, cv=2)
    assert scores.shape == (2,)
    clf.fit(IMAGES, LABELS)
    assert clf.model is clf.model_ and clf.get_params()["model"] is make_cnn
    assert clone(clf).model is make_cnn


def test_bad_two_dimensional_targets():
    clf = KerasClassifier(build_fn=make_cnn, epochs=1)
    with pytest.raises(ValueError, match="one-hot rows"):
        clf.fit(IMAGES[:4], np.array([[1, 1], [0, 1], [1, 0], [0, 1]]))


def test_regressor_takes_images():
    def build():
        model = Sequential([Flatten(input_shape=(5, 5, 1)), Dense(1)])
        model.compile("sgd", "mse")
        return model

    reg = KerasRegressor(build_fn=build, epochs=2, batch_size=8, random_state=0)
    reg.fit(IMAGES, IMAGES.mean(axis=(1, 2, 3)))
    assert reg.predict(IMAGES).shape == (48,) and reg.model is reg.model_
