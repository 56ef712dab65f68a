"""Callbacks: hooks that ``fit`` calls around epochs and batches (Keras semantics).

``fit`` runs, in order, the progress bar (``minidl.progbar.ProgbarLogger``, when ``verbose``),
the user's callbacks, then the model's ``History``. Batch logs hold that batch's values
(``loss``, metrics, ``batch``, ``size``); epoch logs hold the epoch's averages weighted by batch
size plus ``val_*`` values.
"""

from __future__ import annotations

import csv
import inspect
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from minidl import backend as K

logger = logging.getLogger("minidl")


class Callback:
    """Base class: override any ``on_*`` method; ``self.model`` and ``self.params`` are set.

    When ``fit`` validates on arrays, ``self.validation_data`` holds them as Keras 2 had it:
    ``[x..., y..., sample_weight...]`` (None otherwise).
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}
        self.validation_data: list[Any] | None = None

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called once after the last epoch (also after an early stop)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of an epoch with its averaged training and validation logs."""

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each training batch (Keras 2 name)."""

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each training batch with that batch's loss and metrics."""

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each training batch; defaults to ``on_batch_begin``."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each training batch; defaults to ``on_batch_end``."""
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called before ``evaluate`` (or validation) runs."""

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called after ``evaluate`` (or validation) with its results."""

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each evaluation batch."""

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called before ``predict``."""

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called after ``predict``."""

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each prediction batch."""


class CallbackList:
    """Calls every callback of a list in order."""

    def __init__(self, callbacks: Iterable[Callback] | None, model: Any, params: dict) -> None:
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    "Every callback must be an instance of minidl.callbacks.Callback. "
                    f"Received: {callback!r}"
                )
            callback.set_model(model)
            callback.set_params(params)

    def call(self, hook: str, *args: Any) -> None:
        """Run ``callback.<hook>(*args)`` on every callback."""
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


class History(Callback):
    """Records epoch logs: ``history.history["loss"]``, ``history.epoch``, ``history.params``."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _MonitorMixin:
    """Shared ``monitor``/``mode`` handling of EarlyStopping and ModelCheckpoint."""

    def _init_monitor(self, monitor: str, mode: str, name: str) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"{name}: `mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}"
            )
        self.monitor = monitor
        if mode == "auto":
            wants_max = "acc" in monitor or monitor.startswith("fmeasure") or "auc" in monitor
            mode = "max" if wants_max else "min"
        self.mode = mode

    def _improved(self, current: float, best: float, min_delta: float = 0.0) -> bool:
        if self.mode == "max":
            return current - min_delta > best
        return current + min_delta < best

    def _initial_best(self) -> float:
        return -np.inf if self.mode == "max" else np.inf

    def _monitored_value(
        self, logs: dict[str, Any] | None, name: str, consequence: str = ""
    ) -> float | None:
        """The monitored value, reading ``val_acc`` for ``val_accuracy`` (and back) if needed.

        When neither name is in the logs, warns once (naming the available metrics and
        ``consequence``) and returns None.
        """
        logs = logs or {}
        for key in (self.monitor, monitor_alias(self.monitor)):
            if key is not None and logs.get(key) is not None:
                return float(logs[key])
        if not getattr(self, "_warned_missing", False):
            self._warned_missing = True
            logger.warning(
                "%s is conditioned on metric %r which is not available%s. Available metrics: %s",
                name,
                self.monitor,
                consequence,
                ", ".join(sorted(k for k in logs if k not in ("batch", "size"))),
            )
        return None


def monitor_alias(monitor: str) -> str | None:
    """The other Keras spelling of an accuracy name: ``val_acc`` <-> ``val_accuracy``.

    >>> monitor_alias("val_acc"), monitor_alias("accuracy"), monitor_alias("loss")
    ('val_accuracy', 'acc', None)
    """
    for short, long in (("acc", "accuracy"),):
        if monitor == short or monitor.endswith("_" + short):
            return monitor[: -len(short)] + long
        if monitor == long or monitor.endswith("_" + long):
            return monitor[: -len(long)] + short
    return None


class EarlyStopping(_MonitorMixin, Callback):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the weights of the best epoch are put back when
    training stops early.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__()
        self._init_monitor(monitor, mode, "EarlyStopping")
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0. Received: patience={patience}")
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._initial_best()
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._initial_best() if self.baseline is None else float(self.baseline)
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = self._monitored_value(logs, "EarlyStopping")
        if current is None:
            return
        if self._improved(current, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of epoch {self.best_epoch + 1}.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1:05d}: early stopping")


class ModelCheckpoint(_MonitorMixin, Callback):
    """Save the model (or only its weights) after every epoch, or only when it improves.

    ``filepath`` may hold ``str.format`` fields filled from the epoch (1-based) and the
    logs, e.g. ``"weights.{epoch:02d}-{val_loss:.2f}.h5"``. Files are written atomically.
    ``save_freq`` (Keras 2.3): ``"epoch"``, or an int: save at the end of the batch where
    that many samples have been seen since the last save (then ``period`` is not used and
    the logs are the batch's).
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        period: int = 1,
        save_freq: str | int = "epoch",
    ) -> None:
        super().__init__()
        self._init_monitor(monitor, mode, "ModelCheckpoint")
        if period < 1:
            raise ValueError(f"`period` must be >= 1. Received: period={period}")
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                f"`save_freq` must be 'epoch' or a positive integer (samples). "
                f"Received: save_freq={save_freq!r}"
            )
        self.save_freq = save_freq
        self._samples_since_save = 0
        self._epoch = 0
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.period = period
        self.best = self._initial_best()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best = self._initial_best()
        self._samples_since_save = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            return
        self._samples_since_save += int((logs or {}).get("size", 0))
        if self._samples_since_save >= self.save_freq:
            self._samples_since_save = 0
            self._save(self._epoch, logs)

    def format_path(self, epoch: int, logs: dict[str, Any] | None) -> str:
        """The file name for ``epoch`` (0-based), formatted with ``epoch + 1`` and ``logs``."""
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))
        except (KeyError, IndexError, ValueError) as err:
            raise KeyError(
                f'Failed to format the ModelCheckpoint filepath "{self.filepath}": {err!r}. '
                f"Available keys: epoch, {', '.join(sorted(logs or {}))}."
            ) from None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq != "epoch" or (epoch + 1) % self.period:
            return
        self._save(epoch, logs)

    def _save(self, epoch: int, logs: dict[str, Any] | None) -> None:
        path = self.format_path(epoch, logs)
        if self.save_best_only:
            current = self._monitored_value(
                logs, "ModelCheckpoint", "; with save_best_only=True it will write nothing"
            )
            if current is None:
                return
            if not self._improved(current, self.best):
                if self.verbose:
                    print(f"\nEpoch {epoch + 1:05d}: {self.monitor} did not improve")
                return
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1:05d}: {self.monitor} improved from {self.best:.5f} "
                    f"to {current:.5f}, saving model to {path}"
                )
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1:05d}: saving model to {path}")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    The epoch and batch are kept in ``self.stopped_epoch`` / ``self.stopped_batch`` and in
    ``model.history.params["terminated_on_nan"]``, and logged as a warning.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stopped_epoch: int | None = None
        self.stopped_batch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.stopped_epoch, self.stopped_batch = self._epoch, batch
        logger.warning(
            "TerminateOnNaN: invalid loss %s at epoch %d, batch %d; terminating training.",
            loss,
            self._epoch,
            batch,
        )
        self.model.stop_training = True
        history = getattr(self.model, "history", None)
        if history is not None:
            history.params["terminated_on_nan"] = {"epoch": self._epoch, "batch": batch}


class CSVLogger(Callback):
    """Append each epoch's logs as a row of a CSV file (header ``epoch`` then sorted keys)."""

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self.keys: list[str] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.keys = None
        if self.append and os.path.isfile(self.filename) and os.path.getsize(self.filename):
            with open(self.filename, newline="") as handle:
                header = next(csv.reader(handle, delimiter=self.separator), None)
            self.keys = header[1:] if header else None
        else:
            open(self.filename, "w").close()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        with open(self.filename, "a", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.separator)
            if self.keys is None:
                self.keys = sorted(logs)
                writer.writerow(["epoch", *self.keys])
            writer.writerow([epoch, *(logs.get(key, "NA") for key in self.keys)])


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate from ``schedule(epoch)`` or ``schedule(epoch, lr)``.

    The rate is written with ``K.set_value`` (no recompilation) at the start of each epoch,
    and reported as ``lr`` in the epoch logs.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"`schedule` must be callable. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _positional_arity(schedule) >= 2

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        variable = _learning_rate_variable(self)
        if self._takes_lr:
            rate = self.schedule(epoch, float(K.get_value(variable)))
        else:
            rate = self.schedule(epoch)
        if not isinstance(rate, (float, int, np.floating, np.integer)) or isinstance(rate, bool):
            raise ValueError(
                "The output of the `schedule` function should be a float. "
                f"Received: {rate!r} at epoch {epoch}"
            )
        K.set_value(variable, np.asarray(rate, dtype=K.dtype(variable)))
        if self.verbose:
            print(
                f"\nEpoch {epoch + 1:05d}: LearningRateScheduler setting learning rate to {rate}."
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["lr"] = float(K.get_value(_learning_rate_variable(self)))


class BaseLogger(Callback):
    """Average each batch's metrics over an epoch, weighted by batch size (Keras 2's logger).

    At the end of an epoch it writes the averages of the metrics named in
    ``params["metrics"]`` into the epoch logs. ``fit`` already logs the same averages; this
    class exists so Keras 2 code that lists it, or subclasses it, keeps working.
    """

    def __init__(self, stateful_metrics: Iterable[str] | None = None) -> None:
        super().__init__()
        self.stateful_metrics = set(stateful_metrics or ())
        self.seen = 0
        self.totals: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seen = 0
        self.totals = {}

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        size = logs.get("size", 0)
        self.seen += size
        for key, value in logs.items():
            if key in ("batch", "size"):
                continue
            if key in self.stateful_metrics:
                self.totals[key] = value
            else:
                self.totals[key] = self.totals.get(key, 0.0) + value * size

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or not self.seen:
            return
        for key in self.params.get("metrics", ()):
            if key in self.totals:
                total = self.totals[key]
                logs[key] = total if key in self.stateful_metrics else total / self.seen


class ReduceLROnPlateau(_MonitorMixin, Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving (Keras 2).

    After ``patience`` epochs without an improvement of more than ``min_delta`` the rate
    becomes ``max(lr * factor, min_lr)``; then ``cooldown`` epochs pass before waiting
    starts again. The current rate is logged as ``lr`` every epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if "epsilon" in kwargs:  # Keras 2's older name, deprecated there too
            warnings.warn(
                "ReduceLROnPlateau: `epsilon` is deprecated; use `min_delta`.",
                DeprecationWarning,
                stacklevel=2,
            )
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to ReduceLROnPlateau: {kwargs}")
        if not factor < 1.0 or factor < 0:
            raise ValueError(
                "ReduceLROnPlateau does not support a factor >= 1.0 (or < 0). "
                f"Received: factor={factor}"
            )
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        self._init_monitor(monitor, mode, "ReduceLROnPlateau")
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.min_delta = abs(float(min_delta))
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self._initial_best()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self._initial_best()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        variable = _learning_rate_variable(self)
        if logs is not None:
            logs["lr"] = float(K.get_value(variable))
        current = self._monitored_value(
            logs, "ReduceLROnPlateau", "; the learning rate will not be reduced"
        )
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best, self.min_delta):
            self.best = current
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        old_lr = float(K.get_value(variable))
        if old_lr > self.min_lr:
            new_lr = max(old_lr * self.factor, self.min_lr)
            K.set_value(variable, np.asarray(new_lr, dtype=K.dtype(variable)))
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1:05d}: ReduceLROnPlateau reducing learning rate to ", end=""
                )
                print(f"{new_lr}.")
            self.cooldown_counter = self.cooldown
            self.wait = 0


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, l: ...)``."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        super().__init__()
        for hook, fn in hooks.items():
            if not hook.startswith("on_") or not hasattr(Callback, hook):
                valid = sorted(n for n in dir(Callback) if n.startswith("on_"))
                raise ValueError(f"Unknown callback hook {hook!r}. Valid hooks: {valid}")
            setattr(self, hook, fn)


def _learning_rate_variable(callback: Callback) -> Any:
    """The learning-rate variable of the optimizer of the model ``callback`` is attached to."""
    optimizer = getattr(callback.model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(
            f"{type(callback).__name__} needs a compiled model whose optimizer has a "
            f"`learning_rate`. Received: optimizer={optimizer!r}"
        )
    return optimizer.learning_rate


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return 2
    return sum(1 for p in parameters if p.kind in kinds)


def __getattr__(name: str) -> Any:
    if name == "ProgbarLogger":  # lives with the bar it draws; imported lazily (no cycle)
        from minidl.progbar import ProgbarLogger

        return ProgbarLogger
    raise AttributeError(f"module 'minidl.callbacks' has no attribute {name!r}")
