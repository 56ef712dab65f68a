"""Behaviour specific to the numpy backend: the static plan, in-place work, fused gradients.

The backend-neutral op and gradient tests (``test_ops.py``, ``test_gradients.py``) run on
numpy through the ``backend`` fixture; this file checks what only the numpy backend has.
"""

from __future__ import annotations

import numpy as np
import pytest

from minidl import backend as K
from minidl.backends import im2col
from minidl.backends.numpy import lowering

from . import naive


@pytest.fixture(autouse=True)
def _numpy_backend():
    K.set_backend("numpy")


def _mlp_step():
    rng = np.random.default_rng(0)
    w1 = K.variable(rng.normal(0, 0.1, (6, 5)))
    b1 = K.variable(np.zeros(5))
    w2 = K.variable(rng.normal(0, 0.1, (5, 3)))
    params = [w1, b1, w2]

    def step(x, y):
        p = K.softmax(K.dot(K.tanh(K.dot(x, w1) + b1), w2))
        loss = K.mean(K.categorical_crossentropy(y, p))
        grads = K.gradients(loss, params)
        return [loss, p], [(w, w - 0.1 * g) for w, g in zip(params, grads)]

    with lowering.passes("all"):
        f = K.function(step, [((None, 6), "float32"), ((None, 3), "float32")])
    return f, params


def test_plan_is_straight_line_code_with_fused_softmax_gradient():
    f, _ = _mlp_step()
    assert f.source.startswith("def run(a0, a1):")
    assert "softmax_ce_grad" in f.source and "softmax_grad" not in f.source
    assert "in place" in f.source  # bias add and tanh reuse the dot's buffer
    assert "for " not in f.source  # no graph walking at run time


def test_sgd_updates_write_into_the_variables_buffers():
    f, params = _mlp_step()
    buffers = [id(p.value) for p in params]
    x = np.ones((4, 6), dtype="float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    loss_before, p = f(x, y)
    loss_after, _ = f(x, y)
    assert loss_after < loss_before
    assert [id(p.value) for p in params] == buffers
    p[...] = 0.0  # the returned arrays are not reused by the next call
    assert np.all(f(x, y)[1] > 0)


def test_missing_gradient_rule_names_the_op():
    def step(x):
        (g,) = K.gradients(K.sum(K.tanh(x)), [x])
        return K.gradients(K.sum(g), [x]), []

    with pytest.raises(NotImplementedError, match="tanh_grad"):
        K.function(step, [((None, 2), "float64")])


def test_user_errors_name_what_was_expected():
    v = K.variable(np.ones((2, 2)), name="kernel")
    with pytest.raises(ValueError, match="scalar loss"):
        K.function(lambda x: (K.gradients(x * v, [v]), []), [((2, 2), "float32")])
    with pytest.raises(ValueError, match="kernel"):
        K.function(lambda x: ([x], [(v, K.sum(x))]), [((2, 2), "float32")])
    with pytest.raises(ValueError, match="step input"):
        K.function(lambda x: ([K.constant(K.eval(x))], []), [((2,), "float32")])


def test_static_shapes_and_scalar_dtypes_while_tracing():
    seen = {}

    def step(x):
        y = K.conv2d(x, K.constant(np.ones((3, 3, 1, 4))), (2, 2), "same")
        seen["conv"] = K.int_shape(y)
        seen["flat"] = K.int_shape(K.batch_flatten(y))
        seen["dtype"] = K.dtype(K.cast(x, "float64") * 0.5 + 1)
        return [y], []

    K.function(step, [((None, 7, 8, 1), "float32")])
    assert seen == {"conv": (None, 4, 4, 4), "flat": (None, 64), "dtype": "float64"}


def test_chunked_convolution_matches_unchunked(monkeypatch):
    rng = np.random.default_rng(0)
    x, kernel = rng.normal(size=(5, 9, 8, 2)), rng.normal(size=(3, 3, 2, 3))

    def step(x, k):
        y = K.conv2d(x, k, (1, 2), "same")
        return [y, *K.gradients(K.sum(K.square(y)), [x, k])], []

    specs = [((None, 9, 8, 2), "float64"), ((3, 3, 2, 3), "float64")]
    whole = K.function(step, specs)(x, kernel)
    monkeypatch.setattr(im2col, "IM2COL_BUDGET_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(im2col, "MIN_BLOCK_PIXELS", 0)
    chunked = K.function(step, specs)(x, kernel)
    np.testing.assert_allclose(whole[0], naive.conv2d(x, kernel, (1, 2), "same"), atol=1e-12)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum_on_ties():
    x = np.zeros((1, 4, 4, 1))
    x[0, 2:, 2:, 0] = [[1.0, 3.0], [3.0, 2.0]]

    def step(x):
        return K.gradients(K.sum(K.pool2d(x, (2, 2))), [x]), []

    (grad,) = K.function(step, [((None, 4, 4, 1), "float64")])(x)
    expected = naive.max_pool_gradient(x, np.ones((1, 2, 2, 1)), (2, 2))
    np.testing.assert_array_equal(grad, expected)
    assert grad.sum() == 4.0 and grad[0, 0, 0, 0] == 1.0 and grad[0, 2, 3, 0] == 1.0


@pytest.mark.parametrize(
    "pool_size, strides", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (3, 2))]
)
def test_max_pool_gradient_with_many_ties_matches_naive(pool_size, strides):
    x = np.round(np.random.default_rng(1).uniform(0, 2, (2, 7, 7, 3)))  # values 0, 1, 2

    def step(x):
        y = K.pool2d(x, pool_size, strides)
        return [y, *K.gradients(K.sum(y), [x])], []

    y, grad = K.function(step, [((None, 7, 7, 3), "float64")])(x)
    g = np.ones(y.shape)
    np.testing.assert_array_equal(grad, naive.max_pool_gradient(x, g, pool_size, strides))


def test_threaded_blocks_match_the_naive_reference(monkeypatch):
    monkeypatch.setattr(im2col, "WORKERS", 2)
    monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)  # split even these tiny ops
    monkeypatch.setattr(im2col, "IM2COL_BUDGET_BYTES", 1)  # many blocks (bands of rows)
    monkeypatch.setattr(im2col, "MIN_BLOCK_PIXELS", 0)
    rng = np.random.default_rng(2)
    x, kernel = rng.normal(size=(3, 9, 8, 2)), rng.normal(size=(3, 3, 2, 4))

    def step(x, k):
        y = K.conv2d(x, k)
        pooled = K.pool2d(y, (2, 2))
        loss = K.sum(K.square(pooled))
        return [y, pooled, *K.gradients(loss, [x, k])], []

    specs = [((None, 9, 8, 2), "float64"), ((3, 3, 2, 4), "float64")]
    y, pooled, gx, gk = K.function(step, specs)(x, kernel)
    np.testing.assert_allclose(y, naive.conv2d(x, kernel), atol=1e-12)
    np.testing.assert_array_equal(pooled, naive.pool2d(y, (2, 2)))
    monkeypatch.setattr(im2col, "WORKERS", 1)
    serial = K.function(step, specs)(x, kernel)
    np.testing.assert_allclose(gx, serial[2], atol=1e-12)
    np.testing.assert_allclose(gk, serial[3], atol=1e-12)
