"""Keras 2 model methods and arguments: predict_classes/proba, *_generator arguments,
validation_freq, ModelCheckpoint(save_freq), Callback.validation_data, stop_training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minidl
from minidl.callbacks import Callback, LambdaCallback, ModelCheckpoint
from minidl.engine import keras2_arguments
from minidl.layers import Dense
from minidl.models import Sequential
from minidl.utils import to_categorical

RNG = np.random.default_rng(9)
X = RNG.normal(size=(40, 4)).astype("float32")
LABELS = (X[:, 0] > 0).astype(int)


def model_for(units: int, loss: str):
    minidl.set_random_seed(0)
    activation = "softmax" if units > 1 else "sigmoid"
    model = Sequential([Dense(units, activation=activation, input_shape=(4,))])
    model.compile("sgd", loss, metrics=["acc"])
    return model


def test_predict_classes_and_proba(backend):
    softmax = model_for(3, "categorical_crossentropy")
    proba = softmax.predict_proba(X)
    np.testing.assert_allclose(proba, softmax.predict(X))
    np.testing.assert_array_equal(softmax.predict_classes(X), proba.argmax(axis=-1))
    sigmoid = model_for(1, "binary_crossentropy")
    classes = sigmoid.predict_classes(X, batch_size=7)
    assert classes.shape == (40, 1) and classes.dtype == np.int32
    np.testing.assert_array_equal(classes, (sigmoid.predict(X) > 0.5).astype("int32"))
    assert 0 < classes.sum() < 40  # both classes occur: the threshold matters


def test_validation_freq_and_validation_data(backend):
    model = model_for(2, "categorical_crossentropy")
    y = to_categorical(LABELS, 2)
    seen = []

    class Peek(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, self.validation_data))

    history = model.fit(
        X, y, epochs=4, validation_split=0.25, validation_freq=2, verbose=0, callbacks=[Peek()]
    )
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    val_x, val_y, val_w = seen[0][1]
    np.testing.assert_array_equal(val_x, X[30:])
    np.testing.assert_array_equal(val_y, y[30:])
    assert val_w.shape == (10,)
    listed = model.fit(
        X, y, epochs=3, validation_data=(X[:5], y[:5]), validation_freq=[1, 3], verbose=0
    )
    assert len(listed.history["val_acc"]) == 2
    with pytest.raises(ValueError, match="validation_freq"):
        model.fit(X, y, validation_split=0.2, validation_freq=0, verbose=0)


def test_stop_training_from_a_callback(backend):
    model = model_for(2, "categorical_crossentropy")
    stopper = LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1)
    )
    history = model.fit(X, to_categorical(LABELS, 2), epochs=5, verbose=0, callbacks=[stopper])
    assert history.epoch == [0, 1] and model.stop_training


def test_model_checkpoint_save_freq_counts_samples(backend, tmp_path):
    model = model_for(2, "categorical_crossentropy")
    saved = []
    checkpoint = ModelCheckpoint(str(tmp_path / "w-{epoch}-{batch}.h5"), save_freq=24)
    checkpoint.model = model
    original = checkpoint._save

    def record(epoch, logs):
        saved.append((epoch, logs["batch"]))
        original(epoch, logs)

    checkpoint._save = record
    model.fit(
        X, to_categorical(LABELS, 2), epochs=2, batch_size=8, verbose=0, callbacks=[checkpoint]
    )
    # 80 samples in batches of 8: a save after every third batch (24 samples)
    assert saved == [(0, 2), (1, 0), (1, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1-2.h5", "w-2-0.h5", "w-2-3.h5"]
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("x.h5", save_freq="batch")


def test_generator_arguments_and_keras_1_names(backend):
    model = model_for(2, "categorical_crossentropy")
    y = to_categorical(LABELS, 2)

    def batches():
        while True:
            for start in range(0, 40, 10):
                yield X[start : start + 10], y[start : start + 10]

    keras2_arguments._warned.clear()
    with pytest.warns(UserWarning, match="`workers` is accepted but has no effect"):
        history = model.fit_generator(
            batches(),
            steps_per_epoch=4,
            epochs=2,
            workers=4,
            use_multiprocessing=True,
            max_queue_size=5,
            verbose=0,
        )
    assert len(history.history["loss"]) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once already: quiet now
        loss = model.evaluate_generator(batches(), steps=4, workers=2, max_queue_size=3)
        out = model.predict_generator(batches(), steps=2, workers=2, use_multiprocessing=False)
    assert np.isfinite(loss[0]) and out.shape == (20, 2)
    with pytest.warns(UserWarning, match="nb_epoch"):
        history = model.fit(X, y, nb_epoch=3, verbose=0)
    assert len(history.epoch) == 3
    with pytest.raises(ValueError, match="samples_per_epoch.*steps_per_epoch"):
        model.fit_generator(batches(), samples_per_epoch=40, nb_epoch=1)
    with pytest.raises(TypeError, match="unexpected keyword arguments: \\['epochz'\\]"):
        model.fit(X, y, epochz=2)
