"""The theano backend's NumPy-run Ops (``pool_ops``, ``relu_ops``) against naive references.

The pooling Ops run the shared NumPy pooling kernels inside a PyTensor graph; here their
values, gradients and gradients of gradients (which ``pool_ops`` gives as further Ops) are
checked on freely drawn geometries, static or unknown spatial sizes, with tied values in
windows (max-pooling routes a tie to the window's first maximum in row-major order). ``Relu``
may overwrite its input in the C mode: only where nothing else reads it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minidl import backend as K

from . import naive
from .conftest import backend_skip_reason

SKIP_REASON = backend_skip_reason("theano")
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture()
def theano():
    K.set_backend("theano")
    from minidl.backends.theano import pool_ops

    return pool_ops


@st.composite
def geometries(draw: st.DrawFn) -> tuple:
    """(x with small integer values, so windows tie; pool size; strides; padding; mode)."""
    pool_size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    height, width = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    if padding == "valid":
        assume(height >= pool_size[0] and width >= pool_size[1])
    shape = (draw(st.integers(1, 2)), height, width, draw(st.integers(1, 3)))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).integers(-3, 4, shape).astype("float64")
    return x, pool_size, strides, padding, draw(st.sampled_from(["max", "avg"]))


def _pool_steps(x, pool_size, strides, padding, mode, static: bool):
    """Values, input gradient (weights ``w``) and gradient of ``sum(grad * v)`` w.r.t. ``w``."""
    spec = x.shape if static else (None, None, None, x.shape[3])

    def step(a, w, v):
        pooled = K.pool2d(a, pool_size, strides, padding, mode)
        (grad,) = K.gradients(K.sum(pooled * w), [a])
        (again,) = K.gradients(K.sum(grad * v), [w])
        return [pooled, grad, again], []

    out_spec = (None, None, None, x.shape[3])
    specs = [(spec, "float64"), (out_spec, "float64"), (spec, "float64")]
    return K.function(step, specs)


@SETTINGS
@given(geometry=geometries(), static=st.booleans(), seed=st.integers(0, 2**16))
def test_pool_ops_match_the_loop_reference_to_second_order(theano, geometry, static, seed):
    x, pool_size, strides, padding, mode = geometry
    expected = naive.pool2d(x, pool_size, strides, padding, mode)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=expected.shape)
    v = rng.normal(size=x.shape)
    pooled, grad, again = _pool_steps(x, pool_size, strides, padding, mode, static)(x, w, v)
    assert pooled.shape == expected.shape
    np.testing.assert_allclose(pooled, expected, rtol=1e-12, atol=1e-12)
    if mode == "max":
        routed = naive.max_pool_gradient(x, w, pool_size, strides, padding)
        np.testing.assert_allclose(grad, routed, rtol=1e-12, atol=1e-12)  # overlaps: sums
        # d/dw sum(route(w) * v): v read at each window's first maximum
        unit = np.zeros(expected.shape)
        selected = np.zeros(expected.shape)
        for index in np.ndindex(*expected.shape):
            unit[index] = 1.0
            routed = naive.max_pool_gradient(x, unit, pool_size, strides, padding)
            selected[index] = np.sum(routed * v)
            unit[index] = 0.0
        np.testing.assert_allclose(again, selected, rtol=1e-12, atol=1e-12)
    else:
        # the average's gradient is its adjoint: sum(avg(v) * w) == sum(grad * v)
        np.testing.assert_allclose(
            np.sum(grad * v), np.sum(naive.pool2d(v, pool_size, strides, padding, "avg") * w)
        )
        np.testing.assert_allclose(
            again, naive.pool2d(v, pool_size, strides, padding, "avg"), rtol=1e-12, atol=1e-12
        )


def test_pool2d_is_one_op_node_outside_the_numba_and_jax_modes(theano):
    import pytensor.tensor as pt

    from minidl.backends.theano import conv

    a = pt.tensor(dtype="float32", shape=(2, 7, 6, 3))
    for mode, op in (("max", theano.MaxPool2D), ("avg", theano.AvgPool2D)):
        out = conv.pool2d(a, (2, 2), None, "valid", mode)
        assert isinstance(out.owner.op, op), out.owner.op
        assert out.type.shape == (2, 3, 3, 3)


@SETTINGS
@given(data=st.data())
def test_tile_gradient_by_offsets_equals_the_ranking_kernel_with_ties_nan_and_inf(data):
    from minidl.backends import pooling

    window = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    shape = (
        data.draw(st.integers(1, 2)),
        data.draw(st.integers(window[0], 8)),
        data.draw(st.integers(window[1], 8)),
        data.draw(st.integers(1, 3)),
    )
    values = st.sampled_from([-1.0, 0.0, 2.0, np.inf, -np.inf, np.nan])
    x = data.draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    x = np.asarray(x, dtype="float32").reshape(shape)
    pooled = pooling.max_pool_forward(x, window, window)
    grad = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=pooled.shape)
    grad = grad.astype("float32")
    if data.draw(st.booleans()):  # an inf or NaN gradient: a pick, not a product
        grad.reshape(-1)[0] = data.draw(st.sampled_from([np.inf, np.nan]))
    want = pooling._tile_max_gradient(x, pooled, grad, window, pooling.Scratch())
    got = pooling.tile_max_gradient_by_offsets(x, pooled, grad, window)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_relu_runs_in_place_only_where_its_input_is_needed_by_nothing_else(theano, monkeypatch):
    from minidl.backends.theano import relu_ops

    monkeypatch.setenv("MINIDL_THEANO_MODE", "C")
    x = np.array([[-1.5, 0.0, 2.0, np.nan], [-0.0, 3.0, -np.inf, np.inf]], dtype="float32")

    def step(a):
        doubled = a * 2.0
        shared = a + 1.0  # also read after relu: relu must not overwrite it
        return [K.relu(doubled), K.relu(shared), shared, K.relu(a)], []

    f = K.function(step, [((None, 4), "float32")])
    kept = x.copy()
    relu_doubled, relu_shared, shared, relu_a = f(x)
    np.testing.assert_array_equal(x, kept)  # the caller's input is never overwritten
    np.testing.assert_array_equal(relu_doubled, np.maximum(2 * x, 0))
    np.testing.assert_array_equal(relu_shared, np.maximum(x + 1, 0))
    np.testing.assert_array_equal(shared, x + 1)
    np.testing.assert_array_equal(relu_a, np.maximum(x, 0))
    ops = [node.op for node in f.pytensor_function.maker.fgraph.toposort()]
    relus = [op for op in ops if isinstance(op, relu_ops.Relu)]
    assert len(relus) == 3 and sum(op.inplace for op in relus) == 1, relus


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    size=st.tuples(st.integers(3, 7), st.integers(3, 7)),
    seed=st.integers(0, 99),
)
def test_conv_bias_relu_fusion_gives_the_unfused_graphs_numbers(
    theano, monkeypatch, kernel, strides, padding, size, seed
):
    from minidl.backends.theano import conv_ops, fusion

    monkeypatch.setenv("MINIDL_THEANO_MODE", "C")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, *size, 3)).astype("float32")
    params = [K.variable(rng.normal(size=(*kernel, 3, 64)).astype("float32")) for _ in range(3)]
    biases = [K.variable(rng.normal(size=(64,)).astype("float32")) for _ in range(3)]

    def step(a):
        convs = [K.conv2d(a, w, strides, padding) for w in params]
        fused_relu = K.relu(convs[0] + biases[0])
        fused_bias = K.tanh(convs[1] + biases[1])  # the add fuses, tanh stays
        read_twice = convs[2] + biases[2]  # the conv is read again: not fused
        loss = K.sum(fused_relu * fused_bias) + K.sum(K.relu(read_twice) * convs[2])
        return [fused_relu, fused_bias, loss, *K.gradients(loss, [a, *params, *biases])], []

    results, fused = {}, {}
    for switch in ("1", "0"):
        monkeypatch.setenv(fusion.SWITCH_ENV, switch)
        f = K.function(step, [((None, *size, 3), "float32")])
        results[switch] = f(x)
        nodes = f.pytensor_function.maker.fgraph.toposort()
        fused[switch] = [n.op.relu for n in nodes if isinstance(n.op, fusion.Conv2DBiasRelu)]
        plain = [n for n in nodes if type(n.op) is conv_ops.Conv2D]
    assert sorted(fused["1"]) == [False, True] and fused["0"] == [] and len(plain) == 3
    for got, want in zip(results["1"], results["0"], strict=True):
        np.testing.assert_array_equal(got, want)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    geometry=st.sampled_from([((2, 2), (2, 2), "valid"), ((3, 3), (2, 2), "same")]),
    seed=st.integers(0, 999),
    specials=st.booleans(),
)
def test_pooled_relu_slopes_give_the_full_size_slopes_numbers(
    theano, monkeypatch, geometry, seed, specials
):
    from minidl.backends.theano import fusion, pool_ops

    monkeypatch.setenv("MINIDL_THEANO_MODE", "C")
    pool_size, strides, padding = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(2, 6, 8, 3)).astype("float32")  # ties, zeros
    weights = rng.normal(size=(2, 3, 4, 3)).astype("float32")
    if specials:  # NaN and inf in the input and in the incoming gradient
        x.reshape(-1)[rng.integers(0, x.size, 4)] = [np.nan, np.inf, -np.inf, np.nan]
        weights.reshape(-1)[rng.integers(0, weights.size, 2)] = [np.inf, np.nan]

    def step(a, w):
        pooled = K.pool2d(K.relu(a * 1.5), pool_size, strides, padding)
        return [pooled, *K.gradients(K.sum(pooled * w), [a])], []

    results, routes = {}, {}
    for switch in ("1", "0"):
        monkeypatch.setenv(fusion.POOLED_SLOPES_ENV, switch)
        f = K.function(step, [((None, 6, 8, 3), "float32"), ((None, 3, 4, 3), "float32")])
        results[switch] = f(x, weights)
        nodes = f.pytensor_function.maker.fgraph.toposort()
        route = next(n for n in nodes if isinstance(n.op, pool_ops.MaxPool2DGradient))
        routes[switch] = route.inputs[2].owner  # what it routes: d/dpooled = w, or w sloped
    assert routes["0"] is None and routes["1"] is not None  # the slope moved before routing
    for got, want in zip(results["1"], results["0"], strict=True):
        np.testing.assert_array_equal(got, want)
