"""Bad input gets the same error, word for word, on every installed backend (issue 3).

Each test makes one user mistake on every backend in turn and compares the exception type and
message across them, and with the builder in ``minidl.backends.errors`` where one exists.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from minidl import backend as K
from minidl.backends.errors import (
    duplicate_update_error,
    input_count_error,
    input_shape_error,
    mixed_dtypes_error,
    set_value_shape_error,
    update_shape_error,
    update_target_error,
)
from minidl.layers import Dense
from minidl.models import Sequential
from tests.conftest import installed_backends

F32_F64 = [((None, 3), "float32"), ((None, 3), "float64")]


def errors_per_backend(make_mistake: Callable[[], object]) -> dict[str, str]:
    """``"TypeName: message"`` of the error ``make_mistake`` raises, per installed backend."""
    previous, found = K.name(), {}
    try:
        for name in installed_backends():
            K.set_backend(name)
            with pytest.raises((TypeError, ValueError)) as info:
                make_mistake()
            found[name] = f"{type(info.value).__name__}: {info.value}"
    finally:
        K.set_backend(previous)
    return found


def assert_everywhere(found: dict[str, str], expected: Exception) -> None:
    """Every backend raised exactly ``expected`` (same type, same message)."""
    wanted = f"{type(expected).__name__}: {expected}"
    assert found == dict.fromkeys(found, wanted)


def trace(step: Callable, specs: list) -> None:
    """Trace ``step`` (returning one output) into a compiled step; errors come from tracing."""
    K.function(lambda *xs: ([step(*xs)], []), specs)


BINARY_OPS = {
    "add": lambda a, b: a + b,
    "multiply": lambda a, b: a * b,
    "subtract": lambda a, b: a - b,
    "divide": lambda a, b: a / b,
    "maximum": lambda a, b: K.maximum(a, b),
    "equal": lambda a, b: K.equal(a, b),
    "where": lambda a, b: K.where(K.greater(a, 0.0), a, b),
    "concatenate": lambda a, b: K.concatenate([a, b]),
}


@pytest.mark.parametrize("op_name", ["add", "multiply", "maximum", "subtract", "divide", "equal"])
def test_mixed_float_dtypes_raise_the_same_type_error(op_name):
    found = errors_per_backend(lambda: trace(BINARY_OPS[op_name], F32_F64))
    assert_everywhere(found, mixed_dtypes_error(op_name, "float32", "float64"))


@pytest.mark.parametrize("op_name", ["where", "concatenate"])
def test_where_branches_and_concatenate_need_one_dtype(op_name):
    found = errors_per_backend(lambda: trace(BINARY_OPS[op_name], F32_F64))
    assert_everywhere(found, mixed_dtypes_error(op_name, "float32", "float64"))


def test_mixed_dtypes_name_the_operands_in_order():
    found = errors_per_backend(lambda: trace(lambda a, b: b + a, F32_F64))
    assert_everywhere(found, mixed_dtypes_error("add", "float64", "float32"))


def test_mixed_dtypes_in_dot():
    specs = [((None, 3), "float32"), ((3, 2), "float64")]
    found = errors_per_backend(lambda: trace(K.dot, specs))
    assert_everywhere(found, mixed_dtypes_error("dot", "float32", "float64"))


def test_integer_and_float_tensors_do_not_mix():
    specs = [((None, 3), "int64"), ((None, 3), "float32")]
    found = errors_per_backend(lambda: trace(lambda a, b: a * b, specs))
    assert_everywhere(found, mixed_dtypes_error("multiply", "int64", "float32"))


def test_a_float64_variable_times_a_float32_input_is_refused():
    def mistake():
        weights = K.variable(np.ones(3), dtype="float64")
        trace(lambda x: x * weights, F32_F64[:1])

    assert_everywhere(
        errors_per_backend(mistake), mixed_dtypes_error("multiply", "float32", "float64")
    )


def test_scalars_are_exempt_and_take_the_tensor_dtype(backend):
    def step(x):
        mixed = (x * np.float64(2.0) + 1) / 2 - np.float32(0.5)
        return [K.maximum(mixed, 0.25), K.where(K.greater(x, 1.0), x, 0.0)], []

    outputs = K.function(step, [((None, 3), "float32")])(np.array([[0.0, 1.0, 2.0]]))
    assert [out.dtype for out in outputs] == [np.float32, np.float32]
    np.testing.assert_allclose(outputs[0], [[0.25, 1.0, 2.0]])
    np.testing.assert_allclose(outputs[1], [[0.0, 0.0, 2.0]])


def test_casting_first_is_the_way_to_mix_dtypes(backend):
    step = K.function(lambda a, b: ([a + K.cast(b, "float32")], []), F32_F64)
    (total,) = step(np.ones((1, 3)), np.full((1, 3), 2.0))
    assert total.dtype == np.float32
    np.testing.assert_allclose(total, [[3.0, 3.0, 3.0]])


@pytest.mark.parametrize(
    "received", [(2, 3, 1), (2, 4), (3,)], ids=["rank too high", "wrong size", "rank too low"]
)
def test_wrong_input_shape_gets_one_message(received):
    def mistake():
        step = K.function(lambda x: ([x * 2.0], []), F32_F64[:1], name="double")
        step(np.zeros(received, dtype="float32"))

    found = errors_per_backend(mistake)
    assert_everywhere(found, input_shape_error(0, "double", (None, 3), received))


def test_wrong_number_of_inputs_gets_one_message():
    def mistake():
        step = K.function(lambda x: ([x * 2.0], []), F32_F64[:1], name="double")
        step(np.zeros((2, 3)), np.zeros((2, 3)))

    assert_everywhere(errors_per_backend(mistake), input_count_error("double", 1, 2))


def test_set_value_with_the_wrong_shape_gets_one_message():
    def mistake():
        K.set_value(K.variable(np.ones((2, 3)), name="kernel"), np.ones((3, 2)))

    assert_everywhere(errors_per_backend(mistake), set_value_shape_error("kernel", (2, 3), (3, 2)))


@pytest.mark.parametrize("rate", [1.0, -0.5])
def test_a_dropout_rate_outside_0_1_gets_one_message(rate):
    def mistake():
        K.dropout(K.constant(np.ones((2, 3), "float32")), rate)

    expected = ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    assert_everywhere(errors_per_backend(mistake), expected)


UPDATE_MISTAKES = {
    "target": (lambda x, v: [(v, v * 2.0), (x, x * 2.0)], update_target_error("train", 1)),
    "twice": (lambda x, v: [(v, v * 2.0), (v, v * 3.0)], duplicate_update_error("train", "k")),
    "shape": (
        lambda x, v: [(v, K.sum(v, axis=0))],
        update_shape_error("train", "k", (2, 3), (3,)),
    ),
}


@pytest.mark.parametrize("mistake", list(UPDATE_MISTAKES))
def test_bad_updates_get_one_message(mistake):
    updates, expected = UPDATE_MISTAKES[mistake]

    def make_mistake():
        kernel = K.variable(np.ones((2, 3)), name="k")
        K.function(lambda x: ([x * 1.0], updates(x, kernel)), F32_F64[:1], name="train")

    assert_everywhere(errors_per_backend(make_mistake), expected)


def _model() -> Sequential:
    model = Sequential([Dense(2, input_dim=3, name="dense")], name="net")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


# mistake -> (how to make it, a piece of the message every backend must show)
MODEL_MISTAKES = {
    "predict, wrong rank": (
        lambda: _model().predict(np.zeros((4, 3, 1), "float32")),
        'ValueError: Input 0 of model "net"',
    ),
    "fit, wrong rank": (
        lambda: _model().fit(np.zeros((4, 3, 1)), np.zeros(4), verbose=0),
        "expected shape=(None, 3), found shape=(4, 3, 1)",
    ),
    "fit, wrong size": (
        lambda: _model().fit(np.zeros((4, 5)), np.zeros(4), verbose=0),
        "expected shape=(None, 3), found shape=(4, 5)",
    ),
    "fit, string labels": (
        lambda: _model().fit(np.zeros((4, 3)), np.array(["cat", "dog", "cat", "dog"]), verbose=0),
        "TypeError: `y` must hold numbers.",
    ),
}


@pytest.mark.parametrize("mistake", list(MODEL_MISTAKES))
def test_model_level_mistakes_read_the_same_everywhere(mistake):
    make_mistake, fragment = MODEL_MISTAKES[mistake]
    found = errors_per_backend(make_mistake)
    assert len(set(found.values())) == 1, found
    assert fragment in next(iter(found.values()))
