"""Callbacks (Keras semantics), History and the progress output of fit/evaluate."""

from __future__ import annotations

import csv
import logging
import os

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl import callbacks, progbar
from minidl.layers import Dense
from minidl.models import Sequential, load_model

RNG = np.random.default_rng(1)
X = RNG.normal(size=(30, 3)).astype("float32")
Y = (X.sum(axis=1) > 0).astype("float32")


def small_model(optimizer="adam") -> Sequential:
    minidl.set_random_seed(0)
    model = Sequential([Dense(4, input_dim=3, activation="tanh"), Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["acc"])
    return model


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


class FakeMetric(callbacks.Callback):
    """Puts a scripted value under ``score`` in the epoch logs (runs before the others)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]


class WeightSnapshots(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append(self.model.get_weights())


def test_hooks_are_called_in_order_with_logs():
    recorder = Recorder()
    small_model().fit(
        X, Y, batch_size=10, epochs=2, verbose=0, callbacks=[recorder], validation_data=(X, Y)
    )
    calls = recorder.calls
    assert calls[0] == ("train_begin",) and calls[-1] == ("train_end",)
    assert calls[1] == ("epoch_begin", 0) and calls[2] == ("batch_begin", 0)
    assert calls[3] == ("batch_end", 0, ["acc", "batch", "loss", "size"])
    assert [c for c in calls if c[0] == "epoch_end"][0] == (
        "epoch_end",
        0,
        ["acc", "loss", "val_acc", "val_loss"],
    )
    assert sum(c[0] == "batch_end" for c in calls) == 6


def test_history_records_every_epoch():
    history = small_model().fit(X, Y, batch_size=8, epochs=3, verbose=0, validation_split=0.2)
    assert history.epoch == [0, 1, 2]
    assert {k: len(v) for k, v in history.history.items()} == {
        "loss": 3,
        "acc": 3,
        "val_loss": 3,
        "val_acc": 3,
    }
    assert history.params["epochs"] == 3 and history.params["steps"] == 3
    assert history.params["metrics"] == ["loss", "acc", "val_loss", "val_acc"]
    assert all(isinstance(v, float) for v in history.history["loss"])


def test_initial_epoch_continues_numbering():
    history = small_model().fit(X, Y, epochs=3, initial_epoch=1, verbose=0)
    assert history.epoch == [1, 2]


def test_early_stopping_waits_for_patience_and_restores_best_weights():
    snapshots = WeightSnapshots()
    stopper = callbacks.EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    model = small_model()
    history = model.fit(
        X,
        Y,
        epochs=10,
        verbose=0,
        callbacks=[FakeMetric([3, 2, 2.5, 2.6, 1, 0]), snapshots, stopper],
    )
    assert history.epoch == [0, 1, 2, 3]
    assert stopper.stopped_epoch == 3 and stopper.best == 2
    for best, now in zip(snapshots.snapshots[1], model.get_weights()):
        np.testing.assert_array_equal(best, now)


def test_early_stopping_modes_and_min_delta():
    stopper = callbacks.EarlyStopping(monitor="val_acc")
    assert stopper.mode == "max"
    rising = callbacks.EarlyStopping(monitor="score", mode="max", min_delta=0.5, patience=0)
    history = small_model().fit(
        X, Y, epochs=5, verbose=0, callbacks=[FakeMetric([1, 1.4, 3, 3, 3]), rising]
    )
    assert history.epoch == [0, 1]
    with pytest.raises(ValueError, match="mode"):
        callbacks.EarlyStopping(mode="lowest")


def test_early_stopping_warns_about_a_missing_metric(caplog):
    with caplog.at_level(logging.WARNING, logger="minidl"):
        history = small_model().fit(
            X, Y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping()]
        )
    assert len(history.epoch) == 2 and "'val_loss' which is not available" in caplog.text


def test_model_checkpoint_formats_names_and_saves_best_only(tmp_path):
    every = callbacks.ModelCheckpoint(
        str(tmp_path / "w.{epoch:02d}-{score:.1f}.h5"), monitor="score", save_weights_only=True
    )
    best = callbacks.ModelCheckpoint(
        str(tmp_path / "best" / "model.{epoch:02d}.h5"), monitor="score", save_best_only=True
    )
    model = small_model()
    model.fit(X, Y, epochs=4, verbose=0, callbacks=[FakeMetric([3, 2, 2.5, 1]), every, best])
    assert sorted(os.listdir(tmp_path)) == [
        "best",
        "w.01-3.0.h5",
        "w.02-2.0.h5",
        "w.03-2.5.h5",
        "w.04-1.0.h5",
    ]
    assert sorted(os.listdir(tmp_path / "best")) == ["model.01.h5", "model.02.h5", "model.04.h5"]
    restored = load_model(str(tmp_path / "best" / "model.04.h5"))
    np.testing.assert_allclose(restored.predict(X), model.predict(X), rtol=1e-6)
    with pytest.raises(ValueError, match="no model architecture"):
        load_model(str(tmp_path / "w.04-1.0.h5"))


def test_model_checkpoint_reports_an_unknown_key(tmp_path):
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "{val_loss:.2f}.h5"))
    with pytest.raises(KeyError, match="Failed to format.*Available keys: epoch, acc, loss"):
        small_model().fit(X, Y, epochs=1, verbose=0, callbacks=[checkpoint])


def test_terminate_on_nan_stops_at_the_first_bad_batch(caplog):
    x = X.copy()
    x[25] = np.nan  # batch 2 with batch_size=10 and no shuffling
    terminator = callbacks.TerminateOnNaN()
    with caplog.at_level(logging.WARNING, logger="minidl"):
        history = small_model().fit(
            x, Y, batch_size=10, epochs=3, shuffle=False, verbose=0, callbacks=[terminator]
        )
    assert history.params["terminated_on_nan"] == {"epoch": 0, "batch": 2}
    assert (terminator.stopped_epoch, terminator.stopped_batch) == (0, 2)
    assert history.epoch == [0] and np.isnan(history.history["loss"][0])
    assert "epoch 0, batch 2" in caplog.text


def test_csv_logger_writes_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    small_model().fit(
        X, Y, epochs=2, verbose=0, validation_split=0.2, callbacks=[callbacks.CSVLogger(path)]
    )
    small_model().fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        validation_split=0.2,
        callbacks=[callbacks.CSVLogger(path, append=True)],
    )
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "acc", "loss", "val_acc", "val_loss"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "0"]
    assert float(rows[1][2]) > 0
    small_model().fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, ";")])
    assert path.read_text().splitlines()[0] == "epoch;acc;loss"


def test_learning_rate_scheduler_changes_the_compiled_step(backend):
    snapshots = WeightSnapshots()
    schedule = callbacks.LearningRateScheduler(lambda epoch: 0.5 if epoch == 0 else 0.0)
    model = small_model(optimizer="sgd")
    history = model.fit(X, Y, epochs=3, verbose=0, callbacks=[schedule, snapshots])
    assert history.history["lr"] == [0.5, 0.0, 0.0]
    for a, b in zip(snapshots.snapshots[0], snapshots.snapshots[2]):
        np.testing.assert_array_equal(a, b)
    assert float(K.get_value(model.optimizer.learning_rate)) == 0.0


def test_learning_rate_scheduler_with_the_current_rate():
    halve = callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)
    history = small_model(optimizer="sgd").fit(X, Y, epochs=3, verbose=0, callbacks=[halve])
    np.testing.assert_allclose(history.history["lr"], [0.005, 0.0025, 0.00125])
    broken = callbacks.LearningRateScheduler(lambda epoch: "fast")
    with pytest.raises(ValueError, match="should be a float"):
        small_model().fit(X, Y, epochs=1, verbose=0, callbacks=[broken])


def test_lambda_callback_and_bad_callbacks():
    seen = []
    hook = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    small_model().fit(X, Y, epochs=2, verbose=0, callbacks=[hook])
    assert seen == [0, 1]
    with pytest.raises(ValueError, match="Unknown callback hook"):
        callbacks.LambdaCallback(on_epoch_finish=print)
    with pytest.raises(TypeError, match="instance of minidl.callbacks.Callback"):
        small_model().fit(X, Y, verbose=0, callbacks=[print])


# ---------------------------------------------------------------- progress output
def test_verbose_1_prints_a_bar_per_epoch_when_not_a_terminal(capsys):
    small_model().fit(X, Y, batch_size=10, epochs=2, validation_split=0.2)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert lines[1].startswith("24/24 [==============================] - ")
    assert " - loss: " in lines[1] and " - acc: " in lines[1] and " - val_loss: " in lines[1]
    assert "\r" not in out


def test_verbose_1_redraws_in_place_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(progbar, "stdout_is_interactive", lambda: True)
    small_model().fit(X, Y, batch_size=10, epochs=1)
    out = capsys.readouterr().out
    assert out.count("\r") >= 2 and "ETA: " in out and out.endswith("\n")
    assert "10/30 [=========>....................]" in out


def test_verbose_2_prints_one_line_per_epoch(capsys):
    small_model().fit(X, Y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[1].startswith(" - ") and "[" not in lines[1]
    assert " - loss: " in lines[1]


def test_verbose_0_is_silent_and_evaluate_shows_a_bar(capsys):
    model = small_model()
    model.fit(X, Y, epochs=1, verbose=0)
    model.predict(X)
    assert capsys.readouterr().out == ""
    loss, acc = model.evaluate(X, Y)
    line = capsys.readouterr().out.strip()
    assert line.startswith("30/30 [") and f"loss: {loss:.4f}" in line and f"acc: {acc:.4f}" in line


def test_progbar_formats():
    assert progbar.format_duration(5) == "5s"
    assert progbar.format_duration(125) == "2:05"
    assert progbar.format_duration(3725) == "1:02:05"
    assert progbar.format_value(0.00001) == "1.0000e-05"
    assert progbar.format_value(0.5) == "0.5000"
