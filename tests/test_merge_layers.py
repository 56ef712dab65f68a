"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) on every backend.

Each goes through ``check_layer`` with a list of inputs (shape, config round trip, one SGD step
on the inputs lowers the loss, the same numbers on every backend) and its output is compared
with NumPy's.
"""

from __future__ import annotations

import numpy as np
import pytest

from minidl import layers

from .layer_checks import check_layer

ELEMENTWISE = {
    "Add": (layers.Add, lambda xs: sum(xs)),
    "Subtract": (layers.Subtract, lambda xs: xs[0] - xs[1]),
    "Multiply": (layers.Multiply, lambda xs: np.prod(np.broadcast_arrays(*xs), axis=0)),
    "Average": (layers.Average, lambda xs: sum(xs) / len(xs)),
    "Maximum": (layers.Maximum, lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs))),
    "Minimum": (layers.Minimum, lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs))),
}
# (input shapes, output shape): equal shapes, size-1 broadcasting, a lower-rank input
SHAPES = {
    "equal": ([(2, 3, 4), (2, 3, 4), (2, 3, 4)], (2, 3, 4)),
    "broadcast": ([(2, 3, 4), (2, 1, 4)], (2, 3, 4)),
    "lower_rank": ([(2, 3, 4), (2, 4)], (2, 3, 4)),
}


def _reference(name: str, xs: list[np.ndarray]) -> np.ndarray:
    rank = max(x.ndim for x in xs)
    aligned = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
    return ELEMENTWISE[name][1](aligned)


@pytest.mark.parametrize(
    "name, shapes_name",
    [(name, "equal") for name in ELEMENTWISE]
    + [("Add", "broadcast"), ("Maximum", "broadcast"), ("Multiply", "lower_rank")]
    + [("Subtract", "lower_rank")],
)
def test_elementwise_merge_layers(name, shapes_name):
    shapes, expected = SHAPES[shapes_name]
    if name == "Subtract":
        shapes = shapes[:2]
    layer = ELEMENTWISE[name][0]()
    assert layer.compute_output_shape(shapes) == expected
    result = check_layer(layer, shapes, expected_weights=0)
    np.testing.assert_allclose(result.output, _reference(name, result.x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "axis, shapes, expected",
    [
        (-1, [(2, 3, 4, 2), (2, 3, 4, 5)], (2, 3, 4, 7)),
        (1, [(2, 3, 4), (2, 1, 4), (2, 2, 4)], (2, 6, 4)),
        (-2, [(2, 3, 4), (2, 3, 4)], (2, 6, 4)),
    ],
)
def test_concatenate(axis, shapes, expected):
    layer = layers.Concatenate(axis=axis)
    assert layer.compute_output_shape(shapes) == expected
    result = check_layer(layer, shapes, expected_weights=0)
    np.testing.assert_array_equal(result.output, np.concatenate(result.x, axis=axis))
    assert layer.get_config()["axis"] == axis


def test_unknown_sizes_propagate():
    assert layers.Concatenate().compute_output_shape([(None, None, 3), (None, 5, 2)]) == (
        None,
        5,
        5,
    )
    assert layers.Concatenate(axis=1).compute_output_shape([(None, None, 3), (4, 5, 3)]) == (
        4,
        None,
        3,
    )
    assert layers.Add().compute_output_shape([(None, None, 3), (None, 5, 1)]) == (None, 5, 3)


@pytest.mark.parametrize(
    "layer, shapes, message",
    [
        (layers.Add(name="sum"), [(None, 3), (None, 4)], r"'sum' \(Add\).*incompatible"),
        (layers.Maximum(name="big"), [(None, 3)], r"'big' \(Maximum\) expects at least 2"),
        (layers.Subtract(name="diff"), [(None, 3)] * 3, r"'diff' \(Subtract\) expects exactly 2"),
        (layers.Add(name="sum2"), [(2, 3), (5, 3)], r"'sum2'.*different batch sizes"),
        (layers.Average(name="avg"), (None, 3), r"'avg'.*must be called on a list"),
        (
            layers.Concatenate(name="cat"),
            [(None, 4, 4, 2), (None, 5, 4, 2)],
            r"'cat'\) requires inputs with matching shapes except for the concatenation axis",
        ),
        (layers.Concatenate(axis=0, name="cat0"), [(None, 2), (None, 2)], r"'cat0'.*batch axis"),
        (layers.Concatenate(axis=3, name="cat3"), [(None, 2), (None, 2)], r"'cat3'.*axis 3"),
    ],
)
def test_bad_shapes_name_the_layer_and_the_shapes(layer, shapes, message):
    with pytest.raises(ValueError, match=message) as error:
        layer.build(shapes)
    assert "Received: " in str(error.value)
    assert str(tuple(shapes[0]) if isinstance(shapes, list) else shapes) in str(error.value)


def test_concatenate_axis_must_be_an_int():
    with pytest.raises(ValueError, match=r"`axis` of Concatenate.*Received: axis='last'"):
        layers.Concatenate(axis="last")


def test_deserialize_by_class_name():
    for name in [*ELEMENTWISE, "Concatenate"]:
        layer = layers.deserialize({"class_name": name, "config": {"name": f"m_{name}"}})
        assert type(layer).__name__ == name and layer.name == f"m_{name}"
