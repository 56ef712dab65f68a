"""Keras 2 callbacks and metric names: ReduceLROnPlateau, BaseLogger, History, monitor aliases."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl.callbacks import (
    BaseLogger,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from minidl.layers import Dense
from minidl.models import Sequential
from minidl.utils import to_categorical


def small_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 5)).astype("float32")
    y = to_categorical((x[:, 0] + x[:, 1] > 0).astype(int), 2)
    return x, y


def small_model(metric: str = "acc", lr: float = 0.1):
    minidl.set_random_seed(0)
    model = Sequential([Dense(2, activation="softmax", input_shape=(5,))])
    model.compile(minidl.optimizers.SGD(lr=lr), "categorical_crossentropy", metrics=[metric])
    return model


@pytest.mark.parametrize("metric", ["acc", "accuracy"])
def test_metric_names_are_logged_as_asked(backend, metric):
    x, y = small_problem()
    history = small_model(metric).fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert sorted(history.history) == sorted(["loss", metric, "val_loss", f"val_{metric}"])


@pytest.mark.parametrize(("metric", "monitor"), [("accuracy", "val_acc"), ("acc", "val_accuracy")])
def test_monitor_reads_the_other_accuracy_spelling(backend, metric, monitor, caplog):
    x, y = small_problem()
    model = small_model(metric, lr=0.0)  # nothing improves: patience 1 stops after epoch 2
    stopper = EarlyStopping(monitor=monitor, patience=1)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        history = model.fit(x, y, epochs=6, validation_split=0.25, verbose=0, callbacks=[stopper])
    assert len(history.epoch) == 2 and stopper.mode == "max"
    assert "not available" not in caplog.text


def test_unknown_monitor_warns_once_with_names_and_checkpoint_writes_nothing(
    backend, tmp_path, caplog
):
    x, y = small_problem()
    model = small_model()
    path = tmp_path / "best.h5"
    checkpoint = ModelCheckpoint(str(path), monitor="val_f1", save_best_only=True)
    stopper = EarlyStopping(monitor="val_f1")
    with caplog.at_level(logging.WARNING, logger="minidl"):
        model.fit(
            x,
            y,
            epochs=3,
            validation_split=0.25,
            verbose=0,
            callbacks=[checkpoint, stopper],
        )
    messages = [r.getMessage() for r in caplog.records if "val_f1" in r.getMessage()]
    assert len(messages) == 2, messages  # once per callback, not once per epoch
    ckpt = next(m for m in messages if m.startswith("ModelCheckpoint"))
    assert "will write nothing" in ckpt and "val_acc, val_loss" in ckpt
    assert "acc, loss" in ckpt and "batch" not in ckpt
    assert not path.exists()


def keras2_reduce_lr(values, lr, factor, patience, min_delta, cooldown, min_lr, mode="min"):
    """Keras 2.2.4's ReduceLROnPlateau.on_epoch_end written out; returns the lr per epoch."""
    best = np.inf if mode == "min" else -np.inf
    wait = cooldown_counter = 0
    seen = []
    for current in values:
        seen.append(lr)
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        better = current < best - min_delta if mode == "min" else current > best + min_delta
        if better:
            best, wait = current, 0
        elif not cooldown_counter > 0:
            wait += 1
            if wait >= patience and lr > min_lr:
                lr = max(lr * factor, min_lr)
                cooldown_counter, wait = cooldown, 0
    return seen, lr


class FakeModel:
    def __init__(self, lr):
        self.optimizer = minidl.optimizers.SGD(lr=lr)


@pytest.mark.parametrize(
    ("values", "kwargs"),
    [
        ([1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8], {"patience": 2}),
        ([1.0] * 10, {"patience": 1, "cooldown": 2, "min_lr": 0.004}),
        ([1.0, 0.99995, 0.9999, 0.5, 0.5, 0.5], {"patience": 1, "min_delta": 1e-4}),
        ([0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3], {"patience": 2, "mode": "max", "factor": 0.5}),
    ],
)
def test_reduce_lr_on_plateau_follows_keras_2(values, kwargs):
    settings = {"factor": 0.1, "min_delta": 1e-4, "cooldown": 0, "min_lr": 0.0, **kwargs}
    callback = ReduceLROnPlateau(monitor="val_loss", **settings)
    model = FakeModel(lr=0.1)
    callback.set_model(model)
    callback.on_train_begin()
    logged = []
    for epoch, value in enumerate(values):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["lr"])
    want, final = keras2_reduce_lr(values, 0.1, **settings)
    np.testing.assert_allclose(logged, want, rtol=1e-6)
    np.testing.assert_allclose(K.get_value(model.optimizer.learning_rate), final, rtol=1e-6)
    assert final < 0.1, "every case reduces the rate at least once"


def test_reduce_lr_on_plateau_in_fit(backend):
    x, y = small_problem()
    callback = ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)
    model = small_model(lr=0.0)  # the loss cannot improve, and 0 is never above min_lr=0
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    assert history.history["lr"] == [0.0, 0.0, 0.0]
    model = small_model(lr=1e-9)  # improvements stay below min_delta: halved from epoch 2 on
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(history.history["lr"], [1e-9, 1e-9, 5e-10, 2.5e-10], rtol=1e-5)
    np.testing.assert_allclose(K.get_value(model.optimizer.learning_rate), 1.25e-10, rtol=1e-5)


def test_reduce_lr_on_plateau_bad_arguments():
    with pytest.raises(ValueError, match=r"factor >= 1.0.*Received: factor=1.5"):
        ReduceLROnPlateau(factor=1.5)
    with pytest.warns(DeprecationWarning, match="min_delta"):
        assert ReduceLROnPlateau(epsilon=0.5).min_delta == 0.5
    with pytest.raises(TypeError, match="cool_down"):
        ReduceLROnPlateau(cool_down=1)


def test_base_logger_and_history_semantics(backend):
    x, y = small_problem()
    model = small_model()
    batches = []
    collect = LambdaCallback(on_batch_end=lambda batch, logs: batches.append(dict(logs)))
    logger_cb = BaseLogger()
    history = model.fit(
        x, y, batch_size=16, epochs=3, initial_epoch=1, verbose=0, callbacks=[collect, logger_cb]
    )
    assert history is model.history and history.epoch == [1, 2]
    assert history.params["epochs"] == 3 and history.params["metrics"] == ["loss", "acc"]
    sizes = [b["size"] for b in batches[:3]]
    assert sizes == [16, 16, 8]
    for key in ("loss", "acc"):
        want = sum(b[key] * b["size"] for b in batches[3:]) / 40
        np.testing.assert_allclose(history.history[key][1], want, rtol=1e-5)
    assert logger_cb.seen == 40
    again = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert again.epoch == [0] and len(again.history["loss"]) == 1  # a new History per fit
