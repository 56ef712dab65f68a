"""The loops behind ``fit``, ``evaluate`` and ``predict``.

They work on any model that offers ``layers``, ``input_shape``, ``output_shape``,
``metrics_names``, ``loss_name``, ``steps`` (a ``StepCache``) and ``stop_training``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl import callbacks as callbacks_module
from minidl.engine import standardize
from minidl.engine.data_adapters import (
    ArrayAdapter,
    is_array_like,
    make_adapter,
    split_validation,
)
from minidl.progbar import Progbar, ProgbarLogger


class Averager:
    """Averages each output over batches, weighted by batch size."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.sums = np.zeros(len(self.names))
        self.count = 0

    def add(self, values: Sequence[float], size: int) -> None:
        self.sums += np.asarray(values, dtype="float64") * size
        self.count += size

    def result(self) -> dict[str, float]:
        return {n: float(s / max(self.count, 1)) for n, s in zip(self.names, self.sums)}


def prepare_arrays(
    model: Any,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    class_weight: dict | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Check and convert array inputs: shapes against the model, lengths, weights."""
    x_array = standardize.standardize_x(x, model.input_shape, model.name)
    y_array = None
    if y is not None:
        y_array = standardize.standardize_y(y, model.output_shape, model.loss_name)
    weights = None
    if sample_weight is not None:
        weights = standardize.standardize_sample_weight(sample_weight, len(x_array))
    standardize.check_same_length({"x": x_array, "y": y_array, "sample_weight": weights})
    if class_weight is not None and y_array is not None:
        from_classes = standardize.class_weight_to_sample_weight(y_array, class_weight)
        weights = from_classes if weights is None else weights * from_classes
    return x_array, y_array, weights


def _prepare_batch(
    model: Any, batch: tuple, class_weight: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check one batch and fill in unit sample weights."""
    x, y, sample_weight = batch
    if y is None:
        raise ValueError(
            "Training and evaluation need targets: the data must provide (x, y) batches. "
            "Received: batches without y"
        )
    x, y, sample_weight = prepare_arrays(model, x, y, sample_weight, class_weight)
    if sample_weight is None:
        sample_weight = np.ones(len(x), dtype="float32")
    return x, y, sample_weight


def _y_spec(model: Any, y: np.ndarray) -> tuple:
    if model.loss_name in standardize.KNOWN_LOSSES:
        return standardize.target_shape(model.loss_name, model.output_shape)
    return (None, *y.shape[1:])


def run_train_batch(model: Any, batch: tuple, class_weight: dict | None = None) -> list[float]:
    """Check one ``(x, y, sample_weight)`` batch and run the train step on it."""
    x, y, sw = _prepare_batch(model, batch, class_weight)
    step = model.steps.get("train", model, _y_spec(model, y))
    return [float(v) for v in step(x, y, sw)]


def run_test_batch(model: Any, batch: tuple) -> tuple[list[float], int]:
    """Check one batch, run the test step; return its outputs and size."""
    x, y, sw = _prepare_batch(model, batch)
    step = model.steps.get("test", model, _y_spec(model, y))
    return [float(v) for v in step(x, y, sw)], len(x)


def predict_batch(model: Any, x: Any) -> np.ndarray:
    """Check one input batch and run the predict step."""
    x = standardize.standardize_x(x, model.input_shape, model.name)
    return model.steps.get("predict", model)(x)[0]


def _validation_adapter(
    model: Any, validation_data: Any, batch_size: int, steps: int | None
) -> Any:
    if is_array_like(validation_data) and isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError(
                "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
                f"val_sample_weight). Received: a {type(validation_data).__name__} of "
                f"length {len(validation_data)}"
            )
        x_val, y_val, *rest = validation_data
        arrays = prepare_arrays(model, x_val, y_val, rest[0] if rest else None)
        return ArrayAdapter(*arrays, batch_size=batch_size, shuffle=False, steps=steps)
    return make_adapter(validation_data, steps=steps, steps_name="validation_steps")


def fit_loop(
    model: Any,
    x: Any,
    y: Any,
    batch_size: int | None,
    epochs: int,
    verbose: int,
    callbacks: Sequence[Any] | None,
    validation_split: float,
    validation_data: Any,
    shuffle: bool,
    class_weight: dict | None,
    sample_weight: Any,
    initial_epoch: int,
    steps_per_epoch: int | None,
    validation_steps: int | None,
) -> callbacks_module.History:
    """Train ``model``; see ``Sequential.fit`` for the arguments."""
    if int(epochs) != epochs or epochs < 0 or initial_epoch < 0:
        raise ValueError(
            "`epochs` and `initial_epoch` must be non-negative integers. "
            f"Received: epochs={epochs}, initial_epoch={initial_epoch}"
        )
    batch_size = 32 if batch_size is None else batch_size
    val_adapter = None
    if is_array_like(x):
        x, y, sample_weight = prepare_arrays(model, x, y, sample_weight, class_weight)
        if y is None:
            raise ValueError("`fit` needs targets: pass `y` along with `x`. Received: y=None")
        if validation_split and validation_data is None:
            (x, y, sample_weight), val_arrays = split_validation(
                x, y, sample_weight, validation_split
            )
            val_adapter = ArrayAdapter(*val_arrays, batch_size=batch_size)
        class_weight = None  # already folded into sample_weight
    elif validation_split:
        raise ValueError(
            "`validation_split` is only supported for array inputs; pass `validation_data` "
            f"instead. Received: x of type {type(x).__name__}"
        )
    adapter = make_adapter(x, y, sample_weight, batch_size, shuffle, steps_per_epoch)
    if validation_data is not None:
        val_adapter = _validation_adapter(model, validation_data, batch_size, validation_steps)

    model.stop_training = False
    model.history = callbacks_module.History()
    metric_names = list(model.metrics_names)
    if val_adapter is not None:
        metric_names += [f"val_{name}" for name in model.metrics_names]
    params = {
        "batch_size": batch_size if isinstance(adapter, ArrayAdapter) else None,
        "epochs": int(epochs),
        "steps": adapter.num_batches(),
        "samples": adapter.num_samples if adapter.steps is None else None,
        "verbose": verbose,
        "do_validation": val_adapter is not None,
        "metrics": metric_names,
    }
    all_callbacks = [ProgbarLogger(verbose)] if verbose else []
    all_callbacks += [*(callbacks or []), model.history]
    callback_list = callbacks_module.CallbackList(all_callbacks, model, params)
    model.history.params = params

    callback_list.call("on_train_begin", {})
    for epoch in range(initial_epoch, int(epochs)):
        callback_list.call("on_epoch_begin", epoch, {})
        averager = Averager(model.metrics_names)
        finished_epoch = True
        for index, batch in enumerate(adapter.epoch()):
            batch_logs: dict[str, Any] = {"batch": index, "size": len(batch[0])}
            callback_list.call("on_train_batch_begin", index, batch_logs)
            values = run_train_batch(model, batch, class_weight)
            averager.add(values, len(batch[0]))
            batch_logs.update(zip(model.metrics_names, values))
            callback_list.call("on_train_batch_end", index, batch_logs)
            if model.stop_training:
                finished_epoch = index + 1 == adapter.num_batches()
                break
        if getattr(adapter, "exhausted", False):
            model.stop_training = True
            if not averager.count:  # the data ran out before this epoch began
                break
        epoch_logs = averager.result()
        if val_adapter is not None and finished_epoch and averager.count:
            val_values = evaluate_loop(model, val_adapter, callbacks=None)
            epoch_logs.update({f"val_{n}": v for n, v in zip(model.metrics_names, val_values)})
        callback_list.call("on_epoch_end", epoch, epoch_logs)
        adapter.on_epoch_end()
        if model.stop_training:
            break
    callback_list.call("on_train_end", {})
    return model.history


def _progbar(adapter: Any, verbose: int) -> Progbar | None:
    """A bar counting samples for arrays and steps otherwise (None when silent)."""
    if not verbose:
        return None
    if getattr(adapter, "num_samples", None) is not None and adapter.steps is None:
        return Progbar(adapter.num_samples, verbose=verbose, unit_name="sample")
    return Progbar(adapter.num_batches(), verbose=verbose)


def evaluate_loop(
    model: Any, adapter: Any, callbacks: Sequence[Any] | None, verbose: int = 0
) -> list[float]:
    """Average the test step's outputs over every batch of ``adapter``."""
    params = {"steps": adapter.num_batches(), "verbose": verbose}
    callback_list = callbacks_module.CallbackList(callbacks, model, params)
    progbar = _progbar(adapter, verbose)
    callback_list.call("on_test_begin", {})
    averager = Averager(model.metrics_names)
    for index, batch in enumerate(adapter.epoch()):
        callback_list.call("on_test_batch_begin", index, {"batch": index})
        values, size = run_test_batch(model, batch)
        averager.add(values, size)
        logs = {"batch": index, "size": size, **dict(zip(model.metrics_names, values))}
        callback_list.call("on_test_batch_end", index, logs)
        if progbar is not None:
            seen = averager.count if progbar.unit_name == "sample" else index + 1
            progbar.update(seen, list(zip(model.metrics_names, values)))
    if averager.count == 0:
        raise ValueError("Evaluation received no data: the input produced no batches.")
    results = averager.result()
    callback_list.call("on_test_end", results)
    return [results[name] for name in model.metrics_names]


def predict_loop(
    model: Any, adapter: Any, callbacks: Sequence[Any] | None, verbose: int = 0
) -> np.ndarray:
    """Run the predict step over every batch of ``adapter`` and stack the outputs."""
    callback_list = callbacks_module.CallbackList(callbacks, model, {"verbose": verbose})
    progbar = _progbar(adapter, verbose)
    callback_list.call("on_predict_begin", {})
    outputs = []
    for index, (x, _, _) in enumerate(adapter.epoch()):
        callback_list.call("on_predict_batch_begin", index, {"batch": index})
        outputs.append(predict_batch(model, x))
        callback_list.call("on_predict_batch_end", index, {"batch": index, "outputs": outputs[-1]})
        if progbar is not None:
            seen = len(outputs) if progbar.unit_name == "step" else sum(map(len, outputs))
            progbar.update(seen)
    callback_list.call("on_predict_end", {})
    if not outputs:
        raise ValueError("Prediction received no data: the input produced no batches.")
    return np.concatenate(outputs, axis=0)
