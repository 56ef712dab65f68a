"""The loops behind ``fit``, ``evaluate`` and ``predict``.

They work on any model with the attributes named in ``TrainableModel``. Data for several
inputs or outputs travel as lists of arrays, one per input and one per trained output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from minidl import callbacks as callbacks_module
from minidl.engine.batches import (
    check_batch_size,
    num_samples,
    predict_batch,
    prepare_arrays,
    run_test_batch,
    run_train_batch,
)
from minidl.engine.data_adapters import (
    ArrayAdapter,
    is_array_like,
    make_adapter,
    split_validation,
)
from minidl.progbar import Progbar, ProgbarLogger


class TrainableModel(Protocol):
    """What the loops use of a model."""

    name: str
    inputs: list[Any]
    outputs: list[Any]
    input_names: list[str]
    output_names: list[str]
    output_training: list[Any]
    metrics_names: list[str]
    steps: Any
    stop_training: bool
    history: Any


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


def _validation_adapter(
    model: Any, validation_data: Any, batch_size: int, steps: int | None
) -> Any:
    if isinstance(validation_data, (tuple, list)):
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


@dataclass
class FitOptions:
    """``fit``'s arguments other than the data (see ``Model.fit``)."""

    batch_size: int | None = None
    epochs: int = 1
    verbose: int = 1
    callbacks: Sequence[Any] | None = None
    validation_split: float = 0.0
    validation_data: Any = None
    shuffle: bool = True
    class_weight: dict | None = None
    sample_weight: Any = None
    initial_epoch: int = 0
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    validation_freq: int | Sequence[int] = 1


def _validates_after(epoch: int, freq: int | Sequence[int]) -> bool:
    """Whether validation runs after ``epoch`` (0-based): every ``freq``-th epoch, or the
    1-based epochs listed (Keras 2.3's ``validation_freq``)."""
    if isinstance(freq, int) and not isinstance(freq, bool):
        if freq < 1:
            raise ValueError(f"`validation_freq` must be >= 1. Received: validation_freq={freq}")
        return (epoch + 1) % freq == 0
    if isinstance(freq, Sequence) and not isinstance(freq, str):
        return epoch + 1 in freq
    raise ValueError(
        f"`validation_freq` must be an int or a list of epochs. Received: validation_freq={freq!r}"
    )


def _as_arrays(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def fit_loop(model: TrainableModel, x: Any, y: Any, options: FitOptions) -> Any:
    """Train ``model``; see ``Model.fit`` for the arguments."""
    batch_size, epochs, verbose = options.batch_size, options.epochs, options.verbose
    callbacks, validation_split = options.callbacks, options.validation_split
    validation_data, shuffle = options.validation_data, options.shuffle
    class_weight, sample_weight = options.class_weight, options.sample_weight
    initial_epoch, steps_per_epoch = options.initial_epoch, options.steps_per_epoch
    validation_steps = options.validation_steps
    if int(epochs) != epochs or epochs < 0 or initial_epoch < 0:
        raise ValueError(
            "`epochs` and `initial_epoch` must be non-negative integers. "
            f"Received: epochs={epochs}, initial_epoch={initial_epoch}"
        )
    batch_size = check_batch_size(batch_size)
    val_adapter = None
    if is_array_like(x):
        x, y, sample_weight = prepare_arrays(model, x, y, sample_weight, class_weight)
        if y is None:
            raise ValueError("`fit` needs targets: pass `y` along with `x`. Received: y=None")
        if num_samples(x) == 0:
            raise ValueError(
                "`fit` received no data: the input arrays hold 0 samples. "
                f"Received: x with shape {x[0].shape}"
            )
        if validation_split and validation_data is None:
            (x, y, sample_weight), val_arrays = split_validation(
                x, y, sample_weight, validation_split
            )
            val_adapter = ArrayAdapter(*val_arrays, batch_size=batch_size)
        class_weight = None  # already folded into sample_weight
        adapter: Any = ArrayAdapter(x, y, sample_weight, batch_size, shuffle, steps_per_epoch)
    elif validation_split:
        raise ValueError(
            "`validation_split` is only supported for array inputs; pass `validation_data` "
            f"instead. Received: x of type {type(x).__name__}"
        )
    else:
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
    if isinstance(val_adapter, ArrayAdapter):  # Keras 2: [x..., y..., sample_weight...]
        val_ys = _as_arrays(val_adapter.y)
        weights = _as_arrays(val_adapter.sample_weight)
        if not weights:  # Keras 2 lists ones when no validation weights were given
            weights = [np.ones(len(y_val), dtype="float32") for y_val in val_ys]
        validation_arrays = [*_as_arrays(val_adapter.x), *val_ys, *weights]
        for callback in callbacks or []:
            callback.validation_data = validation_arrays
    _validates_after(0, options.validation_freq)  # a bad value fails before training

    callback_list.call("on_train_begin", {})
    for epoch in range(initial_epoch, int(epochs)):
        callback_list.call("on_epoch_begin", epoch, {})
        averager = Averager(model.metrics_names)
        finished_epoch = True
        for index, batch in enumerate(adapter.epoch()):
            batch_logs: dict[str, Any] = {"batch": index, "size": _batch_size_of(batch[0])}
            callback_list.call("on_train_batch_begin", index, batch_logs)
            values, size = run_train_batch(model, batch, class_weight)
            batch_logs["size"] = size
            averager.add(values, size)
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
        validate = _validates_after(epoch, options.validation_freq)
        if val_adapter is not None and finished_epoch and averager.count and validate:
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
            seen = len(outputs) if progbar.unit_name == "step" else sum(len(o[0]) for o in outputs)
            progbar.update(seen)
    callback_list.call("on_predict_end", {})
    if not outputs:
        raise ValueError("Prediction received no data: the input produced no batches.")
    joined = [np.concatenate(parts, axis=0) for parts in zip(*outputs)]
    return joined[0] if len(joined) == 1 else joined


def _batch_size_of(x: Any) -> int | None:
    try:
        if isinstance(x, dict):
            x = next(iter(x.values()))
        return num_samples(x) if isinstance(x, list) and hasattr(x[0], "shape") else len(x)
    except (TypeError, StopIteration, IndexError):
        return None
