"""Build a model's train, test and predict steps as compiled ``K.function`` callables.

Each step is traced once and reused for every batch: the train step runs the forward pass
with ``training=True``, the loss (for each output, the mean over every axis of its loss
values times the sample weights, weighted by ``loss_weights`` and summed) and the
metrics, takes ``K.gradients`` over the weights that were trainable at ``compile`` time and
applies the optimizer's updates together with the layers' own (BatchNormalization's moving
statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minidl import backend as K
from minidl.engine import compile_utils
from minidl.engine.node import as_list

Step = Callable[..., list[Any]]
# shapes (batch axis None) of each trained output's targets, then of its sample weights
TargetSpecs = tuple[tuple[tuple, ...], tuple[tuple, ...]]


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


def _weight_constraints(model: Any, params: Sequence[Any]) -> list[Any] | None:
    """Each parameter's constraint (``kernel_constraint`` ...), searched through nested models;
    None when no layer has one."""
    found: dict[int, Any] = {}
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", None) or [])
        for weight in layer.weights:
            constraint = layer.weight_constraint(weight)
            if constraint is not None:
                found[id(weight)] = constraint
    return [found.get(id(p)) for p in params] if found else None


def _regularization_penalty(model: Any) -> Any | None:
    """Sum of the layers' weight penalties (``kernel_regularizer`` and the like), or None."""
    terms = model.regularization_losses()
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _input_specs(model: Any) -> list[tuple[tuple, str]]:
    """One ``(shape, dtype)`` spec per model input (batch axis ``None``)."""
    return [((None, *tuple(t.shape[1:])), t.dtype) for t in model.inputs]


def _target_specs(model: Any, targets: TargetSpecs) -> list[tuple[tuple, str]]:
    """Specs of ``y`` then ``sample_weight`` for each trained output."""
    y_specs, weight_specs = targets
    dtypes = [model.outputs[out.index].dtype for out in model.output_training]
    return [(tuple(s), d) for s, d in zip(y_specs, dtypes)] + [
        (tuple(s), d) for s, d in zip(weight_specs, dtypes)
    ]


def _forward(model: Any, xs: Sequence[Any], training: bool) -> list[Any]:
    return as_list(model.call(xs if len(xs) > 1 else xs[0], training=training))


def _loss_and_metrics(model: Any, outputs: list[Any], ys: Sequence[Any], weights: Sequence[Any]):
    """Total loss, the losses of each output, and the metrics, as scalar tensors."""
    total, output_losses, metrics = None, [], []
    for out, y, sample_weight in zip(model.output_training, ys, weights):
        prediction = outputs[out.index]
        value = compile_utils.reduce_weighted(out.loss_function(y, prediction), sample_weight)
        output_losses.append(value)
        term = value if out.weight == 1.0 else value * out.weight
        total = term if total is None else total + term
    for out, y in zip(model.output_training, ys):
        metrics += [K.mean(fn(y, outputs[out.index])) for fn in out.metric_functions]
    penalty = _regularization_penalty(model)
    if penalty is not None:
        total = total + penalty
    shown = output_losses if len(model.outputs) > 1 else []
    return [total, *shown, *metrics]


def make_train_step(model: Any, targets: TargetSpecs) -> Step:
    """Compile ``step(*xs, *ys, *sample_weights) -> [loss, ...]`` that updates the weights."""
    params = list(model.compiled_trainable_weights)
    optimizer = model.optimizer
    strategy = getattr(model, "distribute_strategy", None)  # minidl.distribute, or None
    n_in, n_out = len(model.inputs), len(model.output_training)
    constraints = _weight_constraints(model, params)

    def train_step(*arrays: Any) -> tuple[list, list]:
        xs, ys, weights = arrays[:n_in], arrays[n_in : n_in + n_out], arrays[n_in + n_out :]
        outputs = _forward(model, xs, training=True)
        state_updates = _collect_layer_updates(model)
        values = _loss_and_metrics(model, outputs, ys, weights)
        grads = K.gradients(values[0], params) if params else []
        if strategy is not None:  # averaged over the workers before the update rule
            grads = strategy.reduce_gradients(grads, params)
        if constraints is None:  # custom optimizers may take only (params, grads)
            updates = optimizer.get_updates(params, grads) + state_updates
        else:
            updates = optimizer.get_updates(params, grads, constraints=constraints) + state_updates
        return values, updates

    specs = _input_specs(model) + _target_specs(model, targets)
    compile_step = K.function if strategy is None else strategy.compile_step
    return compile_step(train_step, specs, name=f"{model.name}_train")


def make_test_step(model: Any, targets: TargetSpecs) -> Step:
    """Compile ``step(*xs, *ys, *sample_weights) -> [loss, ...]`` (inference mode, no updates)."""
    n_in, n_out = len(model.inputs), len(model.output_training)

    def test_step(*arrays: Any) -> tuple[list, list]:
        xs, ys, weights = arrays[:n_in], arrays[n_in : n_in + n_out], arrays[n_in + n_out :]
        outputs = _forward(model, xs, training=False)
        _discard_layer_updates(model)
        return _loss_and_metrics(model, outputs, ys, weights), []

    specs = _input_specs(model) + _target_specs(model, targets)
    return K.function(test_step, specs, name=f"{model.name}_test")


def make_predict_step(model: Any) -> Step:
    """Compile ``step(*xs) -> [outputs...]`` in inference mode."""

    def predict_step(*xs: Any) -> tuple[list, list]:
        outputs = _forward(model, xs, training=False)
        _discard_layer_updates(model)
        return outputs, []

    return K.function(predict_step, _input_specs(model), name=f"{model.name}_predict")


class StepCache:
    """A model's compiled steps, built on first use and kept until the model changes."""

    def __init__(self) -> None:
        self._steps: dict[tuple, Step] = {}

    def clear(self) -> None:
        self._steps.clear()

    def clear_training(self) -> None:
        """Forget the train and test steps (after ``compile``); keep the predict step."""
        self._steps = {k: v for k, v in self._steps.items() if k[0] == "predict"}

    def get(self, kind: str, model: Any, targets: TargetSpecs | None = None) -> Step:
        """The compiled step of ``kind`` for targets and weights of the given shapes."""
        key = (kind, targets)
        if key not in self._steps:
            if kind == "train":
                self._steps[key] = make_train_step(model, targets)
            elif kind == "test":
                self._steps[key] = make_test_step(model, targets)
            else:
                self._steps[key] = make_predict_step(model)
        return self._steps[key]
