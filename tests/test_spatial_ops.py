"""Property tests (hypothesis) of K.conv2d_transpose, K.conv2d(dilation_rate=) and K.slice.

On every backend, for freely drawn geometries: values match the loop references of
``tests/naive_spatial.py`` (float64), gradients of ``sum((op + 0.3) ** 2)`` match float64
central differences, and every installed backend gives the same losses and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minidl import backend as K

from . import naive, naive_spatial
from . import strategies as S
from .conftest import installed_backends
from .test_gradients import CROSS_BACKEND_TOLERANCE, FD_TOLERANCE, finite_differences

VALUE_TOLERANCE = {"rtol": 1e-9, "atol": 1e-12}
SPATIAL_SETTINGS = settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


class OpCase(NamedTuple):
    """One drawn op: its inputs, how to build it with K, and its naive reference."""

    arrays: list[np.ndarray]
    build: Callable[..., Any]
    reference: Callable[..., np.ndarray]
    key: tuple  # what a compiled step depends on (the batch size may vary)


def _conv_length(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a convolution, re-derived here (TensorFlow's rule)."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


@st.composite
def transpose_cases(draw: st.DrawFn) -> OpCase:
    """A transposed convolution with any kernel, strides, padding and output padding."""
    batch, height, width = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    in_c, out_c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    out_hw = []
    for size, k, s in ((height, kh, strides[0]), (width, kw, strides[1])):
        extra = draw(st.integers(0, s - 1))  # output padding: any size mapping back to `size`
        base = size * s if padding == "same" else (size - 1) * s + k
        out = base + extra if padding == "valid" else base - draw(st.integers(0, s - 1))
        assume(out >= 1 and _conv_length(out, k, s, padding) == size)
        out_hw.append(out)
    x = draw(S.float_arrays((batch, height, width, in_c), -1.0, 1.0))
    kernel = draw(S.float_arrays((kh, kw, out_c, in_c), -1.0, 1.0))
    shape = (None, *out_hw, out_c)
    return OpCase(
        [x, kernel],
        lambda x_, k_: K.conv2d_transpose(x_, k_, shape, strides, padding),
        lambda x_, k_: naive_spatial.conv2d_transpose(x_, k_, tuple(out_hw), strides, padding),
        ("transpose", x.shape[1:], kernel.shape, shape, strides, padding),
    )


@st.composite
def dilated_cases(draw: st.DrawFn) -> OpCase:
    """A stride-1 convolution with any dilation rate whose dilated kernel fits the input."""
    batch, in_c, out_c = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rate = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_h = (kh - 1) * rate[0] + 1 if padding == "valid" else 1
    low_w = (kw - 1) * rate[1] + 1 if padding == "valid" else 1
    height, width = draw(st.integers(low_h, low_h + 3)), draw(st.integers(low_w, low_w + 3))
    x = draw(S.float_arrays((batch, height, width, in_c), -1.0, 1.0))
    kernel = draw(S.float_arrays((kh, kw, in_c, out_c), -1.0, 1.0))
    return OpCase(
        [x, kernel],
        lambda x_, k_: K.conv2d(x_, k_, (1, 1), padding, rate),
        lambda x_, k_: naive.conv2d(x_, k_, (1, 1), padding, rate),
        ("dilated", x.shape[1:], kernel.shape, rate, padding),
    )


@st.composite
def slice_cases(draw: st.DrawFn) -> OpCase:
    """A static block of an array of any rank; ``-1`` sizes (to the end) on any axis."""
    x = draw(S.array_of_rank(draw(st.integers(1, 4))))
    start, size, index = [], [], []
    for dim in x.shape:
        begin = draw(st.integers(0, dim - 1))
        length = draw(st.sampled_from([-1, draw(st.integers(0, dim - begin))]))
        start.append(begin)
        size.append(length)
        index.append(slice(begin, None if length == -1 else begin + length))
    assume(all(n != 0 for n in size))  # an empty block has no gradient to check
    return OpCase(
        [x],
        lambda x_: K.slice(x_, tuple(start), tuple(size)),
        lambda x_: x_[tuple(index)],
        ("slice", x.shape[1:], x.ndim, tuple(start), tuple(size)),
    )


CASES = {"conv2d_transpose": transpose_cases(), "dilated_conv2d": dilated_cases()}
CASES["slice"] = slice_cases()
_compiled: dict[tuple, Callable[..., list]] = {}


def _step(case: OpCase) -> Callable[..., list]:
    """Compiled (per backend and geometry): the op's output, its loss, d loss / d inputs."""
    key = (K.name(), case.key)
    if key not in _compiled:

        def step(*inputs):
            out = case.build(*inputs)
            loss = K.sum(K.square(out + 0.3))
            return [loss, *K.gradients(loss, list(inputs)), out], []

        specs = [((None, *a.shape[1:]), "float64") for a in case.arrays[:1]]
        specs += [(a.shape, "float64") for a in case.arrays[1:]]
        _compiled[key] = K.function(step, specs, name="spatial_op")
    return _compiled[key]


@pytest.mark.parametrize("op", list(CASES))
@SPATIAL_SETTINGS
@given(data=st.data())
def test_values_match_the_naive_reference(backend, op, data):
    case = data.draw(CASES[op])
    out = _step(case)(*case.arrays)[-1]
    want = case.reference(*case.arrays)
    assert out.shape == want.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, want, **VALUE_TOLERANCE)


@pytest.mark.parametrize("op", list(CASES))
@SPATIAL_SETTINGS
@given(data=st.data())
def test_gradients_match_finite_differences(backend, op, data):
    case = data.draw(CASES[op])
    f = _step(case)
    outputs = f(*case.arrays)
    numeric = finite_differences(f, case.arrays, 1)
    for j, array in enumerate(case.arrays):
        grad = np.asarray(outputs[1 + j])
        assert grad.shape == array.shape and grad.dtype == np.float64
        np.testing.assert_allclose(grad, numeric[j][0], **FD_TOLERANCE, err_msg=f"input {j}")


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs two installed backends")
@pytest.mark.parametrize("op", list(CASES))
@settings(SPATIAL_SETTINGS, max_examples=3)
@given(data=st.data())
def test_backends_agree(op, data):
    case = data.draw(CASES[op])
    results = {}
    for name in installed_backends():
        K.set_backend(name)
        results[name] = _step(case)(*case.arrays)
    reference_name, reference = next(iter(results.items()))
    for name, values in results.items():
        for got, want in zip(values, reference):
            np.testing.assert_allclose(
                got,
                want,
                **CROSS_BACKEND_TOLERANCE["float64"],
                err_msg=f"{name} vs {reference_name}",
            )


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda x: K.conv2d_transpose(x, np.ones((3, 3, 2, 2)), (None, 11, 9, 2), (2, 2)), r"11"),
        (
            lambda x: K.conv2d_transpose(x, np.ones((3, 3, 2, 3)), (None, 8, 8, 2), (2, 2)),
            r"channels",
        ),
        (lambda x: K.conv2d(x, np.ones((3, 3, 2, 1)), (2, 2), "same", (2, 2)), r"dilation_rate"),
        (lambda x: K.slice(x, (0, 0, 0, 0), (-1, 5, 1, 1)), r"axis 1"),
        (lambda x: K.slice(x, (0, 0), (1, 1)), r"one start and one size per axis"),
    ],
)
def test_bad_arguments_fail_the_same_way(backend, build, message):
    def step(x):
        return [build(x)], []

    with pytest.raises(ValueError, match=message) as error:
        K.function(step, [((None, 4, 4, 2), "float32")])
    assert "Received: " in str(error.value)


@pytest.mark.skipif("theano" not in installed_backends(), reason="needs the theano backend")
@settings(SPATIAL_SETTINGS, max_examples=4)
@given(case=transpose_cases())
def test_theano_graph_transpose_equals_its_op(case):
    """The graph form NUMBA/JAX modes compile gives the Op's values and gradients."""
    from minidl.backends.theano import spatial

    previous = K.name()
    K.set_backend("theano")
    try:
        shape, strides, padding = case.key[3], case.key[4], case.key[5]

        def graph_build(x, kernel):
            return spatial._col2im_graph(x, kernel, shape[1:3], strides, padding)

        graph_case = case._replace(build=graph_build, key=("graph", *case.key))
        with_op, with_graph = _step(case)(*case.arrays), _step(graph_case)(*case.arrays)
    finally:
        K.set_backend(previous)
    assert len(with_graph) == len(with_op) > 0
    for got, want in zip(with_graph, with_op):
        np.testing.assert_allclose(got, want, **CROSS_BACKEND_TOLERANCE["float64"])
