"""Element-wise ops and ``sum_to`` shared out to threads (``backends/numpy/parallel.py``).

The slabs must give the very bits one thread gives, for every broadcasting pattern, and a
big sum the same bits on any thread count; and only steps that already hold BLAS to one
thread (convolution steps) may thread their element-wise ops.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import backend as K
from minidl.backends import im2col
from minidl.backends.numpy import lowering, parallel

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BINARY = [np.add, np.subtract, np.multiply, np.true_divide, np.maximum, np.minimum]
UNARY = [np.negative, np.abs, np.square, np.sqrt, np.exp, np.log]


@pytest.fixture
def always_split(monkeypatch):
    monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(im2col, "WORKERS", None)


@st.composite
def operands(draw: st.DrawFn) -> tuple:
    """A result shape and two operands broadcasting to it (size-1 axes, fewer axes, scalars)."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))

    def operand() -> object:
        kind = draw(st.sampled_from(["full", "broadcast", "lower", "scalar"]))
        if kind == "scalar":
            return draw(st.floats(-3, 3, allow_nan=False))
        own = list(shape)
        if kind == "broadcast":
            own = [1 if draw(st.booleans()) else d for d in own]
        elif kind == "lower":
            own = own[draw(st.integers(0, len(own))) :]
        return rng.uniform(0.5, 2.0, own).astype(dtype) * rng.choice([-1, 1], own)

    first = rng.uniform(0.5, 2.0, shape).astype(dtype)  # one operand spans the result
    second = operand()
    return (first, second) if draw(st.booleans()) else (second, first)


@SETTINGS
@given(case=operands(), workers=st.integers(2, 3), index=st.integers(0, len(BINARY) - 1))
def test_binary_slabs_give_the_bits_of_one_thread(always_split, case, workers, index):
    ufunc = BINARY[index]
    expected = ufunc(*case)
    result = parallel.split(ufunc, workers)(*case)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


@SETTINGS
@given(case=operands(), workers=st.integers(2, 3), index=st.integers(0, len(UNARY) - 1))
def test_unary_slabs_give_the_bits_of_one_thread(always_split, case, workers, index):
    x = np.abs(case[0]) if isinstance(case[0], np.ndarray) else np.abs(case[1])
    ufunc = UNARY[index]
    np.testing.assert_array_equal(parallel.split(ufunc, workers)(x), ufunc(x))


def test_mixed_dtypes_and_integers_stay_on_one_call(always_split):
    """Slabs are only cut where the result has the operands' float dtype."""
    a, b = np.arange(12.0).reshape(3, 4), np.arange(12, dtype=np.float32).reshape(3, 4)
    assert parallel.split(np.add, 2)(a, b).dtype == np.float64
    ints = np.arange(12).reshape(3, 4)
    result = parallel.split(np.true_divide, 2)(ints, ints + 1)
    np.testing.assert_array_equal(result, ints / (ints + 1))


@given(rows=st.integers(4, 64), width=st.integers(1, 9), seed=st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_big_sums_are_the_same_bits_on_any_thread_count(rows, width, seed):
    matrix = np.random.default_rng(seed).standard_normal((rows, width)).astype("float32")
    ones = np.ones(rows, dtype=np.float32)
    saved = im2col.PARALLEL_MIN_BYTES
    im2col.PARALLEL_MIN_BYTES = 0
    try:
        sums = [parallel.sum_rows(matrix, ones, workers) for workers in (1, 2, 3)]
        parallel.SPLIT = False  # the switch that keeps sums on one thread keeps their bits
        sums.append(parallel.sum_rows(matrix, ones, 2))
    finally:
        im2col.PARALLEL_MIN_BYTES = saved
        parallel.SPLIT = True
    for other in sums[1:]:
        np.testing.assert_array_equal(sums[0], other)
    np.testing.assert_allclose(sums[0], matrix.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-5)


def _compiled(step, specs):
    K.set_backend("numpy")
    with lowering.passes("all"):
        return K.function(step, specs)


def test_only_convolution_steps_thread_their_element_wise_ops(monkeypatch):
    """A dense step keeps BLAS's own threads: none of its steps gets workers."""
    monkeypatch.setattr(im2col, "WORKERS", 2)  # two threads on any machine

    def dense(x, w, b):
        h = K.dot(x, w) + b  # the bias's gradient is a sum_to, which is never in place
        return K.gradients(K.sum(K.square(h)), [w, b]), []

    specs = [((64, 32), "float32"), ((32, 16), "float32"), ((16,), "float32")]
    plan = _compiled(dense, specs).plan
    assert "sum_to" in {step.node.op for step in plan.steps}
    assert all(step.workers == 1 for step in plan.steps)

    def conv(x, k):
        h = K.conv2d(x, k, padding="same") * 2.0 + 1.0
        return K.gradients(K.sum(K.square(h)), [k]), []

    plan = _compiled(conv, [((2, 8, 8, 3), "float32"), ((3, 3, 3, 4), "float32")]).plan
    threaded = {step.node.op for step in plan.steps if step.workers != 1}
    assert {"mul", "sum_to"} & threaded and "conv2d_grad_kernel" in threaded
