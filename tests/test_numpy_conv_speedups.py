"""The numpy backend's faster convolution paths give the numbers of the plain ones.

Banded products (``backends/banded.py``), convolution epilogues (the ``fusion`` pass) and
activation gradients taken at a max-pool's size (the ``pooled_slopes`` pass) are checked
against naive loops and against the same step with the speed-up switched off.
"""

from __future__ import annotations

import numpy as np
import pytest

from minidl import backend as K
from minidl.backends import banded, conv_kernels, im2col, winograd
from minidl.backends.numpy import lowering

from . import naive


@pytest.fixture(autouse=True)
def _numpy_backend():
    K.set_backend("numpy")


def _kernel_gradient(x, grad, kernel_shape, strides):
    """d(sum(grad * conv(x)))/d(kernel), one output cell at a time (valid padding)."""
    kh, kw, _, _ = kernel_shape
    result = np.zeros(kernel_shape)
    for b, r, c in np.ndindex(grad.shape[:3]):
        window = x[b, r * strides[0] : r * strides[0] + kh, c * strides[1] : c * strides[1] + kw]
        result += window[..., None] * grad[b, r, c]
    return result


def _input_gradient(grad, kernel, x_shape, strides):
    """d(sum(grad * conv(x)))/d(x), one output cell at a time (valid padding)."""
    kh, kw, _, _ = kernel.shape
    result = np.zeros(x_shape)
    for b, r, c in np.ndindex(grad.shape[:3]):
        rows = slice(r * strides[0], r * strides[0] + kh)
        cols = slice(c * strides[1], c * strides[1] + kw)
        result[b, rows, cols] += kernel @ grad[b, r, c]
    return result


@pytest.mark.parametrize(
    "x_shape, kernel_shape, strides, band",
    [
        ((2, 9, 12, 1), (3, 3, 1, 2), (1, 1), 5),  # bands overlap: 3 rounds of additions
        ((1, 8, 11, 2), (3, 4, 2, 3), (1, 1), 4),
        ((2, 9, 13, 3), (2, 3, 3, 4), (2, 2), 3),  # strides in both directions
        ((1, 7, 10, 2), (1, 1, 2, 5), (1, 3), 2),  # 1x1 kernel, bands do not overlap
        ((3, 6, 6, 1), (5, 5, 1, 6), (1, 1), 2),
    ],
)
def test_banded_convolution_matches_naive_loops(monkeypatch, x_shape, kernel_shape, strides, band):
    rng = np.random.default_rng(3)
    x, kernel = rng.normal(size=x_shape), rng.normal(size=kernel_shape)
    out_w = (x_shape[2] - kernel_shape[1]) // strides[1] + 1
    assert out_w % band == 0
    monkeypatch.setattr(banded, "band_width", lambda *args: band)
    out = im2col.conv2d_forward(x, kernel, strides).copy()
    np.testing.assert_allclose(out, naive.conv2d(x, kernel, strides), atol=1e-12)
    grad = rng.normal(size=out.shape)
    expected_kernel = _kernel_gradient(x, grad, kernel_shape, strides)
    got_kernel = im2col.conv2d_kernel_gradient(x, grad, kernel_shape, strides)
    np.testing.assert_allclose(got_kernel, expected_kernel, atol=1e-11)
    got_input = im2col.conv2d_input_gradient(grad, kernel, x_shape, strides)
    np.testing.assert_allclose(
        got_input, _input_gradient(grad, kernel, x_shape, strides), atol=1e-11
    )


def test_banded_blocks_and_threads_match_one_block(monkeypatch):
    rng = np.random.default_rng(4)
    x, kernel = rng.normal(size=(3, 12, 14, 1)), rng.normal(size=(3, 3, 1, 4))
    grad = rng.normal(size=(3, 10, 12, 4))
    assert banded.band_width(12, 3, 1, 4) > 1
    whole = [
        im2col.conv2d_forward(x, kernel, (1, 1)).copy(),
        im2col.conv2d_kernel_gradient(x, grad, kernel.shape, (1, 1)),
        im2col.conv2d_input_gradient(grad, kernel, x.shape, (1, 1)).copy(),
    ]
    monkeypatch.setattr(im2col, "IM2COL_BUDGET_BYTES", 1)  # one output row per block
    monkeypatch.setattr(im2col, "MIN_BLOCK_PIXELS", 0)
    monkeypatch.setattr(im2col, "WORKERS", 2)
    monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
    parts = [
        im2col.conv2d_forward(x, kernel, (1, 1)),
        im2col.conv2d_kernel_gradient(x, grad, kernel.shape, (1, 1)),
        im2col.conv2d_input_gradient(grad, kernel, x.shape, (1, 1)),
    ]
    for a, b in zip(whole, parts):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_band_width_is_a_divisor_with_bounded_extra_work():
    for out_w, kw, sw, filters in [(250, 7, 1, 6), (44, 7, 1, 16), (97, 3, 1, 4), (30, 1, 1, 8)]:
        band = banded.band_width(out_w, kw, sw, filters)
        assert out_w % band == 0
        assert banded.band_length(band, kw, sw) / kw <= banded.MAX_EXTRA_WORK
    assert banded.band_width(97, 3, 1, 4) == 1  # a prime width: im2col
    assert banded.band_width(224, 3, 1, 64) == 1  # enough filters: im2col


def _conv_layer_step(x, kernel, bias, also_return_pre_activation=False):
    pre = K.conv2d(x, kernel, padding="same") + bias
    y = K.tanh(pre)
    loss = K.sum(K.square(y))
    outputs = [y, loss, *K.gradients(loss, [kernel, bias])]
    return (outputs + [pre] if also_return_pre_activation else outputs), []


def _compiled(step, passes="all"):
    specs = [((None, 10, 12, 2), "float32"), ((3, 3, 2, 5), "float32"), ((5,), "float32")]
    with lowering.passes(passes):
        return K.function(step, specs)


def _plan_shapes(compiled, op):
    """Shapes of the ``op`` values the compiled plan computes."""
    return [s.node.shape for s in compiled.plan.steps if s.node.op == op]


def test_conv_bias_and_activation_run_fused_and_match_op_by_op():
    rng = np.random.default_rng(5)
    args = [rng.normal(size=s).astype("float32") for s in [(4, 10, 12, 2), (3, 3, 2, 5), (5,)]]
    fused = _compiled(_conv_layer_step)
    assert "conv2d + add + tanh, fused" in fused.source
    plain = _compiled(_conv_layer_step, "-fusion")
    assert "fused" not in plain.source
    for a, b in zip(fused(*args), plain(*args)):
        np.testing.assert_array_equal(a, b)  # the same ufuncs on the same values


def test_fusion_stops_where_an_intermediate_has_another_reader():
    step = _compiled(lambda x, k, b: _conv_layer_step(x, k, b, True))
    assert "# conv2d + add, fused" in step.source  # the pre-activation is an output: the
    assert "tanh, fused" not in step.source  # chain ends there, tanh runs on its own
    rng = np.random.default_rng(6)
    args = [rng.normal(size=s).astype("float32") for s in [(2, 10, 12, 2), (3, 3, 2, 5), (5,)]]
    y, *_, pre = step(*args)
    np.testing.assert_allclose(y, np.tanh(pre), rtol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize(
    "pool_size, strides, padding",
    [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((2, 3), (1, 1), "valid")],
)
def test_activation_gradient_at_pool_size_matches_naive(activation, pool_size, strides, padding):
    rng = np.random.default_rng(7)
    z = rng.normal(size=(2, 7, 8, 3))
    z[0, :2, :2, 0] = 0.5  # a tie inside a window
    weights = rng.normal(size=naive.pool2d(z, pool_size, strides, padding).shape)

    def step(z):
        y = getattr(K, activation)(z)
        pooled = K.pool2d(y, pool_size, strides, padding)
        return K.gradients(K.sum(pooled * K.constant(weights, dtype="float64")), [z]), []

    with lowering.passes("all"):
        compiled = K.function(step, [((2, 7, 8, 3), "float64")])
    (grad,) = compiled(z)
    y = {"tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "relu": lambda v: v * (v > 0)}
    y = y[activation](z)
    slope = {"tanh": 1 - y**2, "sigmoid": y * (1 - y), "relu": (z > 0).astype(float)}[activation]
    routed = naive.max_pool_gradient(y, weights, pool_size, strides, padding)
    np.testing.assert_allclose(grad, routed * slope, atol=1e-12)
    assert _plan_shapes(compiled, f"{activation}_grad") == [weights.shape]  # at the pooled size


def test_activation_gradient_stays_full_size_when_another_op_reads_it():
    def step(z):
        y = K.tanh(z)
        loss = K.sum(K.pool2d(y, (2, 2))) + K.sum(y)
        return K.gradients(loss, [z]), []

    z = np.random.default_rng(8).normal(size=(1, 4, 4, 1))
    with lowering.passes("all"):
        compiled = K.function(step, [((1, 4, 4, 1), "float64")])
    (grad,) = compiled(z)
    assert _plan_shapes(compiled, "tanh_grad") == [(1, 4, 4, 1)]
    pooled = naive.max_pool_gradient(np.tanh(z), np.ones((1, 2, 2, 1)), (2, 2))
    np.testing.assert_allclose(grad, (pooled + 1) * (1 - np.tanh(z) ** 2), atol=1e-12)


@pytest.mark.parametrize("alpha, cap", [(0.0, None), (0.1, None), (0.2, 1.5), (0.0, 1.5)])
def test_relu_slope_read_from_the_output_matches_the_input_rule_at_kinks(alpha, cap):
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 1.5, 3.0]])
    weights = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])

    def step(x):
        y = K.relu(x, alpha=alpha, max_value=cap)
        return K.gradients(K.sum(y * K.constant(weights, dtype="float64")), [x]), []

    (grad,) = K.function(step, [((1, 6), "float64")])(x)
    slope = np.where(x > 0, 1.0, alpha)
    if cap is not None:
        slope[x >= cap] = 0.0
    np.testing.assert_array_equal(grad, slope * weights)


def test_conv_relu_pool_runs_fused_with_the_slope_at_the_pooled_size():
    def step(x, k, b):
        y = K.relu(K.conv2d(x, k) + b)
        loss = K.sum(K.square(K.pool2d(y, (2, 2))))
        return K.gradients(loss, [k, b]), []

    specs = [((2, 10, 10, 1), "float32"), ((3, 3, 1, 4), "float32"), ((4,), "float32")]
    with lowering.passes("all"):
        compiled = K.function(step, specs)
    assert "conv2d + add + relu, fused" in compiled.source
    assert _plan_shapes(compiled, "relu_grad") == [(2, 4, 4, 4)]


@pytest.mark.parametrize("workers", [2, 3])
def test_kernel_gradient_is_the_same_on_any_thread_count(monkeypatch, workers):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(5, 12, 12, 3)).astype("float32")
    kernel_shape = (3, 3, 3, 40)  # im2col columns; bands are covered below
    grad = rng.normal(size=(5, 10, 10, 40)).astype("float32")
    monkeypatch.setattr(im2col, "IM2COL_BUDGET_BYTES", 1)  # one block per output row
    monkeypatch.setattr(im2col, "MIN_BLOCK_PIXELS", 0)
    monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(im2col, "WORKERS", 1)
    serial = [
        im2col.conv2d_kernel_gradient(x, grad, kernel_shape, (1, 1)),
        im2col.conv2d_kernel_gradient(x[..., :1], grad[..., :4], (3, 3, 1, 4), (1, 1)),
    ]
    monkeypatch.setattr(im2col, "WORKERS", workers)
    for _ in range(3):  # whichever thread takes which run, the sums are added in one order
        threaded = [
            im2col.conv2d_kernel_gradient(x, grad, kernel_shape, (1, 1)),
            im2col.conv2d_kernel_gradient(x[..., :1], grad[..., :4], (3, 3, 1, 4), (1, 1)),
        ]
        for a, b in zip(serial, threaded):
            np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(serial[0], threaded[0])  # each call returns its own array


def test_blocks_are_planned_so_that_every_thread_gets_work():
    """An op that fits one block is cut in ``parts`` (VGG16's 7x7 layers ran on one core)."""
    huge = 2**40  # a minimum block size that would keep everything in one block
    assert len(list(im2col.column_blocks(8, 7, 4096, min_budget=huge))) == 1
    halves = list(im2col.column_blocks(8, 7, 4096, min_budget=huge, parts=2))
    assert halves == [(slice(0, 4), slice(0, 7)), (slice(4, 8), slice(0, 7))]
    bands = list(im2col.column_blocks(1, 14, 4096, min_budget=huge, parts=2))
    assert bands == [(slice(0, 1), slice(0, 7)), (slice(0, 1), slice(7, 14))]
    assert len(winograd._tile_blocks(8, 4, 1024, 4)) == 1
    assert len(winograd._tile_blocks(8, 4, 1024, 4, parts=2)) == 2
    assert len(winograd._tile_blocks(1, 14, 1024, 14, parts=2)) == 2


def _blas_threads() -> int:
    """The most threads any loaded BLAS library will use."""
    import threadpoolctl

    return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")


@pytest.mark.parametrize("backend", ["numpy", "theano"])
def test_a_step_with_threaded_kernels_keeps_blas_on_one_thread_for_the_whole_call(
    monkeypatch, backend
):
    """Handing OpenBLAS its threads back between ops woke them to spin beside the next op."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if backend == "theano":
        pytest.importorskip("pytensor")
    K.set_backend(backend)
    monkeypatch.setattr(im2col, "WORKERS", 2)  # the threads pass gives the conv two workers
    seen = []
    original = conv_kernels.conv2d_forward

    def recording(*args, **kwargs):
        seen.append(_blas_threads())  # before the kernel's own blocks run
        return original(*args, **kwargs)

    monkeypatch.setattr(conv_kernels, "conv2d_forward", recording)

    def step(x, k):
        return [K.sum(K.relu(K.conv2d(x, k, padding="same")))], []

    specs = [((2, 8, 8, 3), "float32"), ((3, 3, 3, 64), "float32")]  # im2col on theano too
    with lowering.passes("all"):  # the numpy step's threads pass (whatever the environment)
        compiled = K.function(step, specs)
    x = np.ones((2, 8, 8, 3), "float32")
    k = np.ones((3, 3, 3, 64), "float32")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        compiled(x, k)
        assert seen == [1]  # every BLAS library loaded (theano's C code links SciPy's too)
        assert _blas_threads() == 2  # given back when the call ends


def test_kernel_gradient_blocks_do_not_depend_on_the_thread_count(monkeypatch):
    """Cutting an op into blocks for the threads must not change the order of its sums."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 9, 9, 16)).astype("float32")  # one block by size
    grad = rng.normal(size=(6, 7, 7, 32)).astype("float32")
    monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
    results = []
    for workers in (1, 2, 3):
        monkeypatch.setattr(im2col, "WORKERS", workers)
        results.append(im2col.conv2d_kernel_gradient(x, grad, (3, 3, 16, 32), (1, 1)))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
