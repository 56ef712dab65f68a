"""Gradient properties on every backend (hypothesis).

* ``K.gradients`` inside ``K.function`` (float64) matches float64 central differences.
* Every installed backend computes the same losses and gradients as the others.
* Reused inputs accumulate (``x * x``, ``x + x``); broadcasting sums back to the operand.
* Inputs stay away from kinks (relu at 0, clip bounds, ties in max and max-pool).

Ops are grouped so that one compiled step per group and backend serves every example (the
input specs use ``None`` sizes); each op contributes its own loss ``sum((op(...) + 0.3)**2)``
and the step returns every loss and the gradient of every loss w.r.t. every input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minidl import backend as K

from . import strategies as S
from .conftest import installed_backends

FD_STEP = 1e-6
# analytic vs central-difference gradients, float64 throughout
FD_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
# the same step on two backends, by dtype
CROSS_BACKEND_TOLERANCE = {
    "float64": {"rtol": 1e-7, "atol": 1e-9},
    "float32": {"rtol": 2e-4, "atol": 2e-5},
}
KINK_MARGIN = 1e-3
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


class Group(NamedTuple):
    """Differentiable ops sharing inputs (and one compiled step per backend)."""

    specs: list[tuple[tuple, str]]
    inputs: Any  # hypothesis strategy drawing a tuple of float64 arrays
    ops: dict[str, Callable[..., Any]]
    kinks: tuple[float, ...] = ()  # input values the arrays must stay away from


def _sum_loss(out: Any) -> Any:
    return K.sum(K.square(out + 0.3))


@st.composite
def _unique_matrix(draw: st.DrawFn, low: float = -3.0, high: float = 3.0) -> tuple:
    shape = draw(S.shapes(2, 2))
    elements = st.floats(low, high, allow_nan=False, width=64)
    from hypothesis.extra import numpy as hnp

    return (draw(hnp.arrays(np.float64, shape, elements=elements, unique=True)),)


@st.composite
def _bias_pair(draw: st.DrawFn) -> tuple:
    a = draw(S.array_of_rank(2))
    b = draw(S.float_arrays((a.shape[1],), 0.5, 2.0))
    return a, b


@st.composite
def _outer_pair(draw: st.DrawFn) -> tuple:
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return draw(S.float_arrays((n, 1))), draw(S.float_arrays((1, m), 0.5, 2.0))


@st.composite
def _matrices(draw: st.DrawFn) -> tuple:
    n, m, k = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (
        draw(S.float_arrays((n, 3))),
        draw(S.float_arrays((k, n, 3))),
        draw(S.float_arrays((3, m))),
    )


@st.composite
def _targets_logits(draw: st.DrawFn) -> tuple:
    shape = draw(S.shapes(2, 2))
    raw = draw(S.float_arrays(shape, 0.0, 1.0)) + 0.05
    return raw / raw.sum(axis=-1, keepdims=True), draw(S.float_arrays(shape))


UNARY = {
    "neg": lambda x: -x,
    "square": lambda x: K.square(x),
    "exp": lambda x: K.exp(x),
    "tanh": lambda x: K.tanh(x),
    "sigmoid": lambda x: K.sigmoid(x),
    "hard_sigmoid": lambda x: K.hard_sigmoid(x),
    "softplus": lambda x: K.softplus(x),
    "softsign": lambda x: K.softsign(x),
    "elu": lambda x: K.elu(x),
    "elu_alpha": lambda x: K.elu(x, 0.5),
    "relu": lambda x: K.relu(x),
    "relu_alpha_max": lambda x: K.relu(x, alpha=0.1, max_value=1.5),
    "abs": lambda x: K.abs(x),
    "clip": lambda x: K.clip(x, -0.5, 1.0),
    "softmax": lambda x: K.softmax(x),
    "softmax_axis0": lambda x: K.softmax(x, axis=0),
    "reuse_mul": lambda x: x * x,
    "reuse_add": lambda x: x + x,
    "reuse_three_times": lambda x: x * x * x - x,
    "pow_3": lambda x: K.pow(x, 3),
    "pow_operator": lambda x: x**2,
    "rpow": lambda x: 2.0**x,
    "div_scalar": lambda x: x / 4.0,
    "rdiv": lambda x: 1.0 / (x * x + 1.0),
    "maximum_scalar": lambda x: K.maximum(x, 0.5),
    "minimum_scalar": lambda x: K.minimum(x, -0.5),
    "where": lambda x: K.where(K.greater(x, 0.0), x * x, -x),
    "cast_float64": lambda x: K.cast(x, "float64") * 2.0,
    "sum_axis0": lambda x: K.sum(x, axis=0),
    "sum_all": lambda x: K.sum(x),
    "mean_keepdims": lambda x: K.mean(x, axis=1, keepdims=True),
    "max_axis1": lambda x: K.max(x, axis=1),
    "min_all": lambda x: K.min(x),
    "reshape": lambda x: K.reshape(x, (-1,)),
    "transpose": lambda x: K.transpose(x),
    "expand_squeeze": lambda x: K.squeeze(K.expand_dims(x, 1) * 2.0, 1),
    "concatenate": lambda x: K.concatenate([x, K.exp(x)], axis=0),
    "batch_flatten": lambda x: K.batch_flatten(K.expand_dims(x)),
}

GROUPS: dict[str, Group] = {
    "unary": Group(
        [((None, None), "float64")],
        _unique_matrix(),
        UNARY,
        kinks=(0.0, -0.5, 0.5, 1.0, 1.5, -2.5, 2.5),
    ),
    "positive": Group(
        [((None, None), "float64")],
        st.tuples(S.float_arrays(S.shapes(2, 2), 0.5, 3.0)),
        {
            "sqrt": lambda x: K.sqrt(x),
            "log": lambda x: K.log(x),
            "pow_fraction": lambda x: K.pow(x, 1.7),
            "pow_negative": lambda x: K.pow(x, -0.5),
            "power_tensor_exponent": lambda x: x ** (x * 0.5),
            "reciprocal": lambda x: 1.0 / x,
        },
    ),
    "bias_broadcast": Group(
        [((None, None), "float64"), ((None,), "float64")],
        _bias_pair(),
        {
            "add": lambda a, b: a + b,
            "sub": lambda a, b: a - b,
            "mul": lambda a, b: a * b,
            "div": lambda a, b: a / b,
            "rsub": lambda a, b: b - a,
            "maximum": lambda a, b: K.maximum(a, b),
            "minimum": lambda a, b: K.minimum(a, b),
            "where": lambda a, b: K.where(K.greater(a, b), a, b * 2.0),
        },
    ),
    "outer_broadcast": Group(
        [((None, 1), "float64"), ((1, None), "float64")],
        _outer_pair(),
        {
            "add": lambda a, b: a + b,
            "mul": lambda a, b: a * b,
            "div": lambda a, b: a / b,
            "power": lambda a, b: (K.abs(a) + 0.5) ** b,
        },
        kinks=(0.0,),
    ),
    "matrices": Group(
        [((None, 3), "float64"), ((None, None, 3), "float64"), ((3, None), "float64")],
        _matrices(),
        {
            "dot_2d": lambda x, x3, w: K.dot(x, w),
            "dot_3d": lambda x, x3, w: K.dot(x3, w),
            "dense_tanh": lambda x, x3, w: K.tanh(K.dot(x, w) + 1.0),
            "transpose_3d": lambda x, x3, w: K.transpose(x3, (2, 0, 1)),
            "concatenate_axis1": lambda x, x3, w: K.concatenate([x3, x3 * x3], axis=1),
            "sum_axes": lambda x, x3, w: K.sum(x3, axis=(0, 2)),
            "padding": lambda x, x3, w: K.spatial_2d_padding(K.expand_dims(x3), ((1, 0), (2, 1))),
        },
    ),
    "losses": Group(
        [((None, None), "float64"), ((None, None), "float64")],
        _targets_logits(),
        {
            "bce_from_logits": lambda t, z: K.binary_crossentropy(t, z, from_logits=True),
            "bce_after_sigmoid": lambda t, z: K.binary_crossentropy(t, K.sigmoid(z)),
            "bce_probabilities": lambda t, z: K.binary_crossentropy(t, K.sigmoid(z) * 0.5 + 0.25),
            "cce_after_softmax": lambda t, z: K.categorical_crossentropy(t, K.softmax(z)),
            "cce_from_logits": lambda t, z: K.categorical_crossentropy(t, z, from_logits=True),
            "cce_probabilities": lambda t, z: K.categorical_crossentropy(t, K.exp(z * 0.3)),
            "cce_axis0": lambda t, z: K.categorical_crossentropy(
                K.softmax(t, axis=0), K.softmax(z, axis=0), axis=0
            ),
        },
    ),
}

_compiled: dict[tuple, Callable[..., list]] = {}


def compiled_group(group_name: str) -> Callable[..., list]:
    """The group's step on the current backend: every loss, then d(loss_i)/d(input_j)."""
    key = (K.name(), group_name)
    if key not in _compiled:
        group = GROUPS[group_name]

        def step(*inputs):
            losses = [_sum_loss(op(*inputs)) for op in group.ops.values()]
            grads = [g for loss in losses for g in K.gradients(loss, list(inputs))]
            return losses + grads, []

        _compiled[key] = K.function(step, group.specs, name=f"grad_{group_name}")
    return _compiled[key]


def finite_differences(f: Callable[..., list], arrays: list, n_losses: int) -> list:
    """Central differences of the first ``n_losses`` outputs w.r.t. every input array."""
    result = []
    for j, array in enumerate(arrays):
        per_loss = np.zeros((n_losses,) + array.shape)
        for index in np.ndindex(array.shape):
            shifted = list(arrays)
            values = []
            for sign in (1.0, -1.0):
                moved = array.copy()
                moved[index] += sign * FD_STEP
                shifted[j] = moved
                values.append(np.array(f(*shifted)[:n_losses], dtype=np.float64))
            per_loss[(slice(None),) + index] = (values[0] - values[1]) / (2 * FD_STEP)
        result.append(per_loss)
    return result


def _away_from_kinks(arrays: tuple, kinks: tuple) -> bool:
    return all(np.all(np.abs(a[..., None] - np.array(kinks)) > KINK_MARGIN) for a in arrays)


def _draw_inputs(data: st.DataObject, group: Group) -> list:
    arrays = list(data.draw(group.inputs))
    if group.kinks:
        assume(_away_from_kinks(tuple(arrays), group.kinks))
    if "maximum" in group.ops:  # no ties between the two operands of maximum/minimum
        a, b = np.broadcast_arrays(*arrays[:2])
        assume(np.all(np.abs(a - b) > KINK_MARGIN))
    return arrays


def check_group_against_finite_differences(group_name: str, arrays: list) -> None:
    group = GROUPS[group_name]
    f = compiled_group(group_name)
    n_losses, n_inputs = len(group.ops), len(arrays)
    outputs = f(*arrays)
    numeric = finite_differences(f, arrays, n_losses)
    for i, op_name in enumerate(group.ops):
        for j, array in enumerate(arrays):
            grad = np.asarray(outputs[n_losses + i * n_inputs + j])
            where = f"{group_name}/{op_name}: d loss / d input {j}"
            assert grad.shape == array.shape, f"{where}: shape {grad.shape} != {array.shape}"
            assert grad.dtype == np.float64, f"{where}: dtype {grad.dtype}"
            np.testing.assert_allclose(grad, numeric[j][i], **FD_TOLERANCE, err_msg=where)


@pytest.mark.parametrize("group_name", list(GROUPS))
@SETTINGS
@given(data=st.data())
def test_gradients_match_finite_differences(backend, group_name, data):
    arrays = _draw_inputs(data, GROUPS[group_name])
    check_group_against_finite_differences(group_name, arrays)


@pytest.mark.exhaustive
@pytest.mark.parametrize("group_name", list(GROUPS))
@settings(SETTINGS, max_examples=300)
@given(data=st.data())
def test_gradients_match_finite_differences_exhaustive(backend, group_name, data):
    arrays = _draw_inputs(data, GROUPS[group_name])
    check_group_against_finite_differences(group_name, arrays)


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs two installed backends")
@pytest.mark.parametrize("group_name", list(GROUPS))
@settings(SETTINGS, max_examples=4)
@given(data=st.data())
def test_backends_agree(group_name, data):
    arrays = _draw_inputs(data, GROUPS[group_name])
    results = {}
    for name in installed_backends():
        K.set_backend(name)
        results[name] = [np.asarray(v) for v in compiled_group(group_name)(*arrays)]
    reference_name, reference = next(iter(results.items()))
    for name, values in results.items():
        for k, (got, want) in enumerate(zip(values, reference)):
            np.testing.assert_allclose(
                got,
                want,
                **CROSS_BACKEND_TOLERANCE["float64"],
                err_msg=f"{group_name} output {k}: {name} vs {reference_name}",
            )


# ------------------------------------------------------------- convolution and pooling


def _conv_step(config: S.ConvConfig) -> Callable[..., list]:
    key = (K.name(), config.key)
    if key not in _compiled:

        def step(x, kernel):
            loss = _sum_loss(K.conv2d(x, kernel, config.strides, config.padding))
            return [loss, *K.gradients(loss, [x, kernel])], []

        specs = [((None,) + config.x.shape[1:], "float64"), (config.kernel.shape, "float64")]
        _compiled[key] = K.function(step, specs, name="conv_grad")
    return _compiled[key]


def _pool_step(config: S.PoolConfig) -> Callable[..., list]:
    key = (K.name(), config.key)
    if key not in _compiled:

        def step(x):
            out = K.pool2d(x, config.pool_size, config.strides, config.padding, config.pool_mode)
            loss = _sum_loss(out)
            return [loss, *K.gradients(loss, [x])], []

        specs = [((None,) + config.x.shape[1:], "float64")]
        _compiled[key] = K.function(step, specs, name="pool_grad")
    return _compiled[key]


def _check_step(f: Callable[..., list], arrays: list) -> None:
    outputs = f(*arrays)
    numeric = finite_differences(f, arrays, 1)
    for j, array in enumerate(arrays):
        grad = np.asarray(outputs[1 + j])
        assert grad.shape == array.shape and grad.dtype == np.float64
        np.testing.assert_allclose(grad, numeric[j][0], **FD_TOLERANCE, err_msg=f"input {j}")


@settings(SETTINGS, max_examples=6)
@given(config=S.conv_configs())
def test_conv2d_gradient_matches_finite_differences(backend, config):
    _check_step(_conv_step(config), [config.x, config.kernel])


@settings(SETTINGS, max_examples=6)
@given(config=S.pool_configs())
def test_pool2d_gradient_matches_finite_differences(backend, config):
    _check_step(_pool_step(config), [config.x])


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs two installed backends")
@settings(SETTINGS, max_examples=4)
@given(conv=S.conv_configs(), pool=S.pool_configs())
def test_conv_and_pool_backends_agree(conv, pool):
    results = {}
    for name in installed_backends():
        K.set_backend(name)
        results[name] = _conv_step(conv)(conv.x, conv.kernel) + _pool_step(pool)(pool.x)
    reference = next(iter(results.values()))
    for name, values in results.items():
        for got, want in zip(values, reference):
            np.testing.assert_allclose(
                np.asarray(got),
                np.asarray(want),
                **CROSS_BACKEND_TOLERANCE["float64"],
                err_msg=f"{name} vs {installed_backends()[0]}",
            )


# ------------------------------------------------------- exact gradient properties


def test_reused_inputs_accumulate(backend):
    def step(x):
        return [*K.gradients(K.sum(x * x), [x]), *K.gradients(K.sum(x + x + x), [x])], []

    f = K.function(step, [((None, 3), "float64")])
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    square_grad, triple_grad = f(x)
    np.testing.assert_allclose(square_grad, 2 * x)
    np.testing.assert_allclose(triple_grad, np.full_like(x, 3.0))


def test_broadcasting_gradients_sum_back(backend):
    bias = K.variable(np.array([1.0, 2.0, 3.0]), dtype="float64")
    row = K.variable(np.ones((1, 3)), dtype="float64")
    column = K.variable(np.ones((4, 1)), dtype="float64")

    def step(x):
        loss = K.sum((x + bias) * row * column)
        return K.gradients(loss, [bias, row, column, x]), []

    f = K.function(step, [((None, 3), "float64")])
    x = np.arange(12.0).reshape(4, 3)
    g_bias, g_row, g_column, g_x = f(x)
    assert g_bias.shape == (3,) and g_row.shape == (1, 3) and g_column.shape == (4, 1)
    np.testing.assert_allclose(g_bias, [4.0, 4.0, 4.0])
    np.testing.assert_allclose(g_row, (x + [1.0, 2.0, 3.0]).sum(0, keepdims=True))
    np.testing.assert_allclose(g_column, (x + [1.0, 2.0, 3.0]).sum(1, keepdims=True))
    np.testing.assert_allclose(g_x, np.ones((4, 3)))


def test_unrelated_variable_gets_zeros_and_stop_gradient(backend):
    used = K.variable(np.array([2.0, 3.0]))
    unused = K.variable(np.ones((2, 2)))

    def step(x):
        loss = K.sum(K.stop_gradient(x * used) * x) + K.sum(used * used)
        return K.gradients(loss, [used, unused, x]), []

    f = K.function(step, [((None, 2), "float32")])
    x = np.array([[1.0, -1.0]], dtype="float32")
    g_used, g_unused, g_x = f(x)
    assert g_unused.shape == (2, 2) and not np.any(g_unused)
    assert g_used.dtype == np.float32
    np.testing.assert_allclose(g_used, [4.0, 6.0])  # stop_gradient blocks x * used
    np.testing.assert_allclose(g_x, x * [2.0, 3.0])


def test_dropout_gradient_uses_the_same_mask(backend):
    def step(x):
        y = K.dropout(x, 0.5, seed=1)
        (g,) = K.gradients(K.sum(y * 3.0), [x])
        return [y, g], []

    f = K.function(step, [((None, 50), "float32")])
    y, g = f(np.ones((4, 50), dtype="float32"))
    np.testing.assert_allclose(g, y * 3.0)


def test_float32_gradients_agree_with_float64(backend):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(5, 4)), rng.normal(size=(4, 3))
    t = np.eye(3)[[0, 2, 1, 1, 0]]
    grads = {}
    for dtype in ("float32", "float64"):
        kernel = K.variable(w, dtype=dtype)

        def step(xs, ts, kernel=kernel):
            p = K.softmax(K.tanh(K.dot(xs, kernel)))
            loss = K.mean(K.categorical_crossentropy(ts, p))
            return K.gradients(loss, [kernel, xs]), []

        f = K.function(step, [((None, 4), dtype), ((None, 3), dtype)])
        grads[dtype] = f(x, t)
        assert all(g.dtype == np.dtype(dtype) for g in grads[dtype])
    for g32, g64 in zip(grads["float32"], grads["float64"]):
        np.testing.assert_allclose(g32, g64, **CROSS_BACKEND_TOLERANCE["float32"])
