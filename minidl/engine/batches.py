"""One batch at a time: check arrays against a model's inputs and outputs, run a step.

Data for several inputs or outputs travel as lists of arrays, one per input and one per
trained output (an output with a loss); dicts keyed by input or output name and single
arrays are turned into such lists by ``prepare_arrays``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.engine import standardize

Arrays = list[np.ndarray]


def num_samples(arrays: Any) -> int:
    """Number of samples in one array or in the first of a list of arrays."""
    first = arrays[0] if isinstance(arrays, list) else arrays
    return len(first)


def prepare_arrays(
    model: Any,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    class_weight: dict | None = None,
) -> tuple[Arrays, Arrays | None, Arrays | None]:
    """Check and convert array inputs: one list per input, trained output and weight."""
    xs = [
        standardize.standardize_x(data, tensor.shape, model.name, index)
        for index, (data, tensor) in enumerate(
            zip(standardize.split_by_name(x, model.input_names, "x", model.name), model.inputs)
        )
    ]
    trained = model.output_training if y is not None or sample_weight is not None else []
    ys = None
    if y is not None:
        ys = [
            standardize.standardize_y(data, model.outputs[out.index].shape, out.loss_name)
            for data, out in zip(_for_trained(model, y, "y"), trained)
        ]
    weights = None
    if sample_weight is not None:
        weights = [
            standardize.standardize_sample_weight(
                data,
                len(xs[0]),
                None if ys is None else standardize.loss_position_shape(ys[i], out.loss_name),
            )
            for i, (data, out) in enumerate(
                zip(_for_trained(model, sample_weight, "sample_weight"), trained)
            )
        ]
    if len({len(a) for a in (*xs, *(ys or ()), *(weights or ()))}) > 1:
        arrays = {f"x[{i}]": a for i, a in enumerate(xs)}
        arrays.update({f"y[{i}]": a for i, a in enumerate(ys or [])})
        arrays.update({f"sample_weight[{i}]": a for i, a in enumerate(weights or [])})
        standardize.check_same_length(
            {name.replace("[0]", "") if len(xs) == 1 else name: a for name, a in arrays.items()}
        )
    if class_weight is not None and ys is not None:
        weights = _apply_class_weight(model, ys, weights, class_weight)
    return xs, ys, weights


def _for_trained(model: Any, data: Any, what: str) -> list[Any]:
    """Split ``data`` by output name and keep the outputs that have a loss."""
    trained = model.output_training
    names = model.output_names
    if isinstance(data, list) and len(data) == len(trained) < len(names):
        return list(data)  # one entry per trained output: a batch already prepared
    if isinstance(data, dict) and len(trained) < len(names):
        names = [out.name for out in trained]
        return standardize.split_by_name(data, names, what, model.name)
    parts = standardize.split_by_name(data, names, what, model.name)
    return [parts[out.index] for out in trained]


def _apply_class_weight(model: Any, ys: Arrays, weights: Arrays | None, class_weight: dict):
    trained = model.output_training
    names = [out.name for out in trained]
    if len(trained) > 1 or (class_weight and set(class_weight) <= set(names)):
        unknown = sorted(map(str, set(class_weight) - set(names)))
        if unknown or not isinstance(class_weight, dict):
            raise ValueError(
                f"With several outputs, `class_weight` must be a dict keyed by output name "
                f"({names}). Received: keys {sorted(map(str, class_weight))}"
            )
        per_output = [class_weight.get(name) for name in names]
    else:
        per_output = [class_weight]
    result = list(weights) if weights is not None else [None] * len(ys)
    for i, (y, table) in enumerate(zip(ys, per_output)):
        if table is None:
            continue
        from_classes = standardize.class_weight_to_sample_weight(y, table)
        result[i] = from_classes if result[i] is None else result[i] * from_classes
    return [np.ones(len(y), "float32") if w is None else w for w, y in zip(result, ys)]


def _prepare_batch(
    model: Any, batch: tuple, class_weight: dict | None = None
) -> tuple[Arrays, Arrays, Arrays]:
    """Check one batch and fill in unit sample weights."""
    x, y, sample_weight = batch
    if y is None:
        raise ValueError(
            "Training and evaluation need targets: the data must provide (x, y) batches. "
            "Received: batches without y"
        )
    xs, ys, weights = prepare_arrays(model, x, y, sample_weight, class_weight)
    assert ys is not None
    if weights is None:
        weights = [np.ones(len(xs[0]), dtype="float32") for _ in ys]
    return xs, ys, weights


def _target_specs(model: Any, ys: Arrays, weights: Arrays) -> tuple:
    y_specs = []
    for out, y in zip(model.output_training, ys):
        if out.loss_name in standardize.KNOWN_LOSSES:
            shape = model.outputs[out.index].shape
            y_specs.append(standardize.target_shape(out.loss_name, shape))
        else:
            y_specs.append((None, *y.shape[1:]))
    weight_specs = tuple((None, *w.shape[1:]) for w in weights)
    return tuple(y_specs), weight_specs


def run_train_batch(
    model: Any, batch: tuple, class_weight: dict | None = None
) -> tuple[list[float], int]:
    """Check one ``(x, y, sample_weight)`` batch, run the train step; return outputs and size."""
    xs, ys, weights = _prepare_batch(model, batch, class_weight)
    step = model.steps.get("train", model, _target_specs(model, ys, weights))
    return [float(v) for v in step(*xs, *ys, *weights)], len(xs[0])


def run_test_batch(model: Any, batch: tuple) -> tuple[list[float], int]:
    """Check one batch, run the test step; return its outputs and size."""
    xs, ys, weights = _prepare_batch(model, batch)
    step = model.steps.get("test", model, _target_specs(model, ys, weights))
    return [float(v) for v in step(*xs, *ys, *weights)], len(xs[0])


def predict_batch(model: Any, x: Any) -> list[np.ndarray]:
    """Check one input batch and run the predict step; one array per output."""
    xs, _, _ = prepare_arrays(model, x, None)
    return list(model.steps.get("predict", model)(*xs))


def check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` as an int (32 for None, Keras' default), or raise when it is
    not a positive integer."""
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer | float)
        or int(batch_size) != batch_size
        or batch_size < 1
    ):
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    return int(batch_size)
