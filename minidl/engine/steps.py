"""Build a model's train, test and predict steps as compiled ``K.function`` callables.

Each step is traced once and reused for every batch: the train step runs the forward pass
with ``training=True``, the loss (mean of per-sample losses times sample weights) and the
metrics, takes ``K.gradients`` over the weights that were trainable at ``compile`` time and
applies the optimizer's updates together with the layers' own (BatchNormalization's moving
statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minidl import backend as K

Step = Callable[..., list[Any]]


def _collect_layer_updates(model: Any) -> list[tuple[Any, Any]]:
    """State updates registered by the layers during the traced forward pass."""
    updates = []
    for layer in model.layers:
        layer_updates = layer.pop_updates()
        if layer.trainable:  # frozen layers keep their state, as in Keras 2
            updates.extend(layer_updates)
    return updates


def _discard_layer_updates(model: Any) -> None:
    for layer in model.layers:
        layer.pop_updates()


def _regularization_penalty(model: Any) -> Any | None:
    """Sum of the layers' weight penalties (``kernel_regularizer`` and the like), or None."""
    terms = model.regularization_losses()
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _input_specs(model: Any, y_shape: tuple | None) -> list[tuple[tuple, str]]:
    """Specs of a step's inputs in the model's float dtype (its first layer's; float32 default)."""
    dtype = getattr(model.layers[0], "dtype", None) or K.floatx() if model.layers else K.floatx()
    x_spec = ((None, *tuple(model.input_shape[1:])), dtype)
    if y_shape is None:
        return [x_spec]
    return [x_spec, (tuple(y_shape), dtype), ((None,), dtype)]


def _loss_and_metrics(model: Any, y: Any, output: Any, sample_weight: Any) -> tuple[Any, list]:
    per_sample = model.loss_function(y, output)
    loss = K.mean(per_sample * sample_weight)
    metrics = [K.mean(fn(y, output)) for fn in model.metric_functions]
    return loss, metrics


def make_train_step(model: Any, y_shape: tuple) -> Step:
    """Compile ``step(x, y, sample_weight) -> [loss, *metrics]`` that updates the weights."""
    params = list(model.compiled_trainable_weights)
    optimizer = model.optimizer

    def train_step(x: Any, y: Any, sample_weight: Any) -> tuple[list, list]:
        output = model.call(x, training=True)
        state_updates = _collect_layer_updates(model)
        loss, metrics = _loss_and_metrics(model, y, output, sample_weight)
        penalty = _regularization_penalty(model)
        if penalty is not None:
            loss = loss + penalty
        grads = K.gradients(loss, params) if params else []
        updates = optimizer.get_updates(params, grads) + state_updates
        return [loss, *metrics], updates

    return K.function(train_step, _input_specs(model, y_shape), name=f"{model.name}_train")


def make_test_step(model: Any, y_shape: tuple) -> Step:
    """Compile ``step(x, y, sample_weight) -> [loss, *metrics]`` (inference mode, no updates)."""

    def test_step(x: Any, y: Any, sample_weight: Any) -> tuple[list, list]:
        output = model.call(x, training=False)
        _discard_layer_updates(model)
        loss, metrics = _loss_and_metrics(model, y, output, sample_weight)
        penalty = _regularization_penalty(model)
        if penalty is not None:
            loss = loss + penalty
        return [loss, *metrics], []

    return K.function(test_step, _input_specs(model, y_shape), name=f"{model.name}_test")


def make_predict_step(model: Any) -> Step:
    """Compile ``step(x) -> [output]`` in inference mode."""

    def predict_step(x: Any) -> tuple[list, list]:
        output = model.call(x, training=False)
        _discard_layer_updates(model)
        return [output], []

    return K.function(predict_step, _input_specs(model, None), name=f"{model.name}_predict")


class StepCache:
    """A model's compiled steps, built on first use and kept until the model changes."""

    def __init__(self) -> None:
        self._steps: dict[tuple, Step] = {}

    def clear(self) -> None:
        self._steps.clear()

    def clear_training(self) -> None:
        """Forget the train and test steps (after ``compile``); keep the predict step."""
        self._steps = {k: v for k, v in self._steps.items() if k[0] == "predict"}

    def get(self, kind: str, model: Any, y_shape: tuple | None = None) -> Step:
        key = (kind, y_shape)
        if key not in self._steps:
            if kind == "train":
                self._steps[key] = make_train_step(model, y_shape)
            elif kind == "test":
                self._steps[key] = make_test_step(model, y_shape)
            else:
                self._steps[key] = make_predict_step(model)
        return self._steps[key]
