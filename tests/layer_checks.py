"""``check_layer``: the one conformance check every layer goes through, on every backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from minidl import backend as K
from minidl.layers import Layer

from .conftest import installed_backends

LEARNING_RATE = 0.1
RTOL, ATOL = 1e-4, 1e-5


@dataclass
class LayerCheck:
    """What ``check_layer`` ran: the input, the weights it set, and the inference output."""

    x: np.ndarray | list[np.ndarray]  # a list for a layer taking a list of inputs
    weights: list[np.ndarray]
    output: np.ndarray


def _perturbed(weights: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Shift every weight by a small positive amount so zeros/ones initial values differ."""
    return [(w + rng.uniform(0.05, 0.2, size=w.shape)).astype(w.dtype) for w in weights]


def _run_on_current_backend(
    layer: Layer, x: np.ndarray, target_seed: int, reference_weights, step_training: bool
):
    """Build ``layer`` here, run one SGD step; return outputs, losses and stepped weights."""
    arrays = x if isinstance(x, list) else [x]
    batch_shapes = [(None, *a.shape[1:]) for a in arrays]
    expected_shape = tuple(
        layer.build_for(batch_shapes if isinstance(x, list) else batch_shapes[0])
    )
    if reference_weights is not None:
        layer.set_weights(reference_weights)
    shapes = [a.shape for a in arrays]
    concrete_shape = tuple(layer.compute_output_shape(shapes if isinstance(x, list) else shapes[0]))
    assert expected_shape == (None, *concrete_shape[1:]), (expected_shape, concrete_shape)
    target = np.random.default_rng(target_seed).normal(size=concrete_shape).astype("float32")

    variables = [K.variable(a) for a in arrays]
    input_variable = variables if isinstance(x, list) else variables[0]
    params = layer.trainable_weights or variables

    def step(target_tensor):
        inference = layer(input_variable, training=False)
        prediction = layer(input_variable, training=step_training)
        loss = K.mean(K.square(prediction - target_tensor))
        grads = K.gradients(loss, params)
        updates = [(p, p - LEARNING_RATE * g) for p, g in zip(params, grads)]
        return [inference, loss], updates + layer.pop_updates()

    compiled = K.function(step, [((None, *concrete_shape[1:]), "float32")])
    output, loss_before = compiled(target)
    _, loss_after = compiled(target)
    assert output.shape == concrete_shape, (output.shape, concrete_shape)
    assert float(loss_after) < float(loss_before), (K.name(), loss_before, loss_after)
    stepped = [K.get_value(p) for p in params] + layer.get_weights()
    return output, float(loss_before), stepped


def _rebuild(layer: Layer, config: dict, custom_objects: dict | None) -> Layer:
    if custom_objects is None:
        return type(layer).from_config(config)
    return type(layer).from_config(config, custom_objects=custom_objects)


def _inputs(input_shape, rng: np.random.Generator):
    """One array for a shape, or a list of arrays for a list of shapes (multi-input layers)."""
    if isinstance(input_shape, list):
        return [rng.normal(size=tuple(s)).astype("float32") for s in input_shape]
    return rng.normal(size=tuple(input_shape)).astype("float32")


def check_layer(
    layer: Layer,
    input_shape: Sequence[int] | list[Sequence[int]],
    expected_weights: int,
    step_training: bool = True,
    seed: int = 0,
    custom_objects: dict | None = None,
) -> LayerCheck:
    """Check ``layer`` on every installed backend; return the input, weights and output.

    Asserts: the output shape equals ``compute_output_shape``; the layer has
    ``expected_weights`` weights; ``from_config(get_config())`` rebuilds an equal config; one SGD
    step on a squared-error loss (over the trainable weights, or over the input for layers
    without any) lowers the loss; and after ``set_weights`` with the same arrays every backend
    gives the same output, loss and weights after the step. ``step_training`` picks the mode
    of the step (False for random layers such as Dropout). A list of shapes checks a layer
    taking a list of inputs (a merge layer); without weights, the step updates every input.
    ``custom_objects`` goes to ``from_config`` (the functions of a ``Lambda``).
    """
    rng = np.random.default_rng(seed)
    x = _inputs(input_shape, rng)
    config = layer.get_config()
    saved = json.loads(json.dumps(config))  # what a model file keeps: tuples become lists
    previous = K.name()
    results: dict[str, tuple] = {}
    reference_weights = None
    try:
        for index, name in enumerate(installed_backends()):
            K.set_backend(name)
            candidate = layer if index == 0 else _rebuild(layer, saved, custom_objects)
            if index:  # rebuilt from the saved text on this backend: the same config
                assert candidate.get_config() == config, (name, candidate.get_config(), config)
            if index == 0:
                arrays = x if isinstance(x, list) else [x]
                shapes = [(None, *a.shape[1:]) for a in arrays]
                candidate.build_for(shapes if isinstance(x, list) else shapes[0])
                reference_weights = _perturbed(candidate.get_weights(), rng)
            results[name] = _run_on_current_backend(
                candidate, x, seed + 1, reference_weights, step_training
            )
            assert len(candidate.weights) == expected_weights, (name, candidate.weights)
            assert candidate.count_params() == sum(w.size for w in reference_weights)
    finally:
        K.set_backend(previous)
    first, *others = results
    for name in others:
        output, loss, stepped = results[name]
        np.testing.assert_allclose(output, results[first][0], rtol=RTOL, atol=ATOL, err_msg=name)
        np.testing.assert_allclose(loss, results[first][1], rtol=RTOL, atol=ATOL, err_msg=name)
        for got, want in zip(stepped, results[first][2]):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)
    clone = _rebuild(layer, saved, custom_objects)
    assert clone.get_config() == config, (clone.get_config(), config)
    return LayerCheck(x, reference_weights, results[first][0])
