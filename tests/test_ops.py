"""Every contract function on every backend: shape, then dtype, then values.

References are plain NumPy (float64) or the loop-based ``tests/naive.py``; no backend is
checked against itself. Ops are evaluated through ``K.function``. To keep compiles few (a
Theano compile is slow), related ops share one compiled step per backend: ``GROUPS`` maps a
group to its input specs, its inputs, and its cases ``name -> (K expression, reference,
expected dtype)``; the step is compiled and run once per backend and each case is its own test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

from minidl import backend as K
from minidl.backends import interface

from . import naive, naive_spatial

# tolerances against a float64 NumPy reference, by the dtype the backend computed in
TOLERANCE = {
    "float32": {"rtol": 2e-5, "atol": 2e-6},
    "float64": {"rtol": 1e-9, "atol": 1e-12},
}
EPS = 1e-7


class Case(NamedTuple):
    """One op under test: the K expression, the NumPy reference and the expected dtype."""

    build: Callable[..., Any]
    reference: Callable[..., np.ndarray]
    dtype: str | None = None  # None: the dtype of the group's first input


class Group(NamedTuple):
    """Cases sharing one compiled step."""

    specs: list[tuple[tuple, str]]
    inputs: list[np.ndarray]
    cases: dict[str, Case]


_rng = np.random.default_rng(1234)
X3 = _rng.uniform(-2.5, 2.5, size=(2, 3, 4)).astype("float32")
C4 = np.linspace(-1.0, 1.0, 4)
C31 = np.array([[0.5], [-0.25], [1.5]])
W45 = _rng.uniform(-1, 1, size=(4, 5))


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _np_relu(x, alpha=0.0, max_value=None):
    y = np.where(x > 0, x, alpha * x)
    return y if max_value is None else np.minimum(y, max_value)


def _const(value: np.ndarray) -> Any:
    return K.constant(np.asarray(value, dtype="float32"))


ELEMENTWISE = {
    "abs": Case(lambda x: K.abs(x), np.abs),
    "sign": Case(lambda x: K.sign(x), np.sign),
    "square": Case(lambda x: K.square(x), np.square),
    "sqrt": Case(lambda x: K.sqrt(K.abs(x)), lambda x: np.sqrt(np.abs(x))),
    "exp": Case(lambda x: K.exp(x), np.exp),
    "log": Case(lambda x: K.log(K.abs(x) + 0.1), lambda x: np.log(np.abs(x) + 0.1)),
    "pow": Case(lambda x: K.pow(K.abs(x), 1.5), lambda x: np.abs(x) ** 1.5),
    "pow_integer": Case(lambda x: K.pow(x, 3), lambda x: x**3),
    "maximum_scalar": Case(lambda x: K.maximum(x, 0.3), lambda x: np.maximum(x, 0.3)),
    "maximum_broadcast": Case(lambda x: K.maximum(x, _const(C4)), lambda x: np.maximum(x, C4)),
    "minimum_broadcast": Case(lambda x: K.minimum(x, _const(C31)), lambda x: np.minimum(x, C31)),
    "clip": Case(lambda x: K.clip(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0)),
    "round": Case(lambda x: K.round(x * 2.0), lambda x: np.round(x * 2.0)),
    "equal": Case(lambda x: K.equal(K.round(x), 1.0), lambda x: np.round(x) == 1.0, "bool"),
    "greater": Case(lambda x: K.greater(x, _const(C4)), lambda x: x > C4, "bool"),
    "less": Case(lambda x: K.less(x, -0.5), lambda x: x < -0.5, "bool"),
    "where": Case(
        lambda x: K.where(K.greater(x, 0.0), x, _const(C4)), lambda x: np.where(x > 0, x, C4)
    ),
    "cast_int32": Case(lambda x: K.cast(x * 3.0, "int32"), lambda x: np.trunc(x * 3.0), "int32"),
    "cast_float64": Case(lambda x: K.cast(x, "float64"), lambda x: x, "float64"),
    "stop_gradient": Case(lambda x: K.stop_gradient(x) * 2.0, lambda x: x * 2.0),
    # operators, reflected operators and broadcasting
    "neg": Case(lambda x: -x, lambda x: -x),
    "add_scalar": Case(lambda x: x + 1.5, lambda x: x + 1.5),
    "radd_scalar": Case(lambda x: 2 + x, lambda x: 2 + x),
    "rsub_scalar": Case(lambda x: 1.0 - x, lambda x: 1.0 - x),
    "mul_scalar": Case(lambda x: x * 3, lambda x: x * 3),
    "rmul_array": Case(lambda x: C4.astype("float32") * x, lambda x: C4 * x),
    "radd_array": Case(lambda x: np.ones(4, "float32") + x, lambda x: 1.0 + x),
    "div_scalar": Case(lambda x: x / 4.0, lambda x: x / 4.0),
    "rdiv_scalar": Case(lambda x: 1.0 / (K.abs(x) + 1.0), lambda x: 1.0 / (np.abs(x) + 1.0)),
    "pow_operator": Case(lambda x: x**2, lambda x: x**2),
    "rpow_scalar": Case(lambda x: 2.0**x, lambda x: 2.0**x),
    "sub_broadcast": Case(lambda x: x - _const(C31), lambda x: x - C31),
    "mul_tensors": Case(lambda x: x * K.exp(x), lambda x: x * np.exp(x)),
    "div_tensors": Case(lambda x: x / (K.square(x) + 1.0), lambda x: x / (x**2 + 1.0)),
    "add_scalar_keeps_float32": Case(lambda x: x + np.float64(0.5), lambda x: x + 0.5),
    # activations
    "relu": Case(lambda x: K.relu(x), _np_relu),
    "relu_alpha": Case(lambda x: K.relu(x, alpha=0.1), lambda x: _np_relu(x, 0.1)),
    "relu_max_value": Case(lambda x: K.relu(x, max_value=1.0), lambda x: _np_relu(x, 0, 1.0)),
    "relu_alpha_max_value": Case(
        lambda x: K.relu(x, alpha=0.2, max_value=1.5), lambda x: _np_relu(x, 0.2, 1.5)
    ),
    "sigmoid": Case(lambda x: K.sigmoid(x), _sigmoid),
    "hard_sigmoid": Case(lambda x: K.hard_sigmoid(x), lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "tanh": Case(lambda x: K.tanh(x), np.tanh),
    "softmax": Case(lambda x: K.softmax(x), _softmax),
    "softmax_axis1": Case(lambda x: K.softmax(x, axis=1), lambda x: _softmax(x, 1)),
    "elu": Case(lambda x: K.elu(x), lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    "elu_alpha": Case(lambda x: K.elu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "softplus": Case(lambda x: K.softplus(x), lambda x: np.log1p(np.exp(x))),
    "softsign": Case(lambda x: K.softsign(x), lambda x: x / (1 + np.abs(x))),
}

REDUCTIONS_AND_SHAPES = {
    "sum_all": Case(lambda x: K.sum(x), np.sum),
    "sum_axis": Case(lambda x: K.sum(x, axis=1), lambda x: x.sum(1)),
    "sum_negative_axis": Case(lambda x: K.sum(x, axis=-1), lambda x: x.sum(-1)),
    "sum_keepdims": Case(
        lambda x: K.sum(x, axis=(1, 2), keepdims=True), lambda x: x.sum((1, 2), keepdims=True)
    ),
    "mean_all": Case(lambda x: K.mean(x), np.mean),
    "mean_axis": Case(lambda x: K.mean(x, axis=0), lambda x: x.mean(0)),
    "mean_keepdims": Case(
        lambda x: K.mean(x, axis=-1, keepdims=True), lambda x: x.mean(-1, keepdims=True)
    ),
    "max_all": Case(lambda x: K.max(x), np.max),
    "max_axis": Case(lambda x: K.max(x, axis=1), lambda x: x.max(1)),
    "min_axis_keepdims": Case(
        lambda x: K.min(x, axis=2, keepdims=True), lambda x: x.min(2, keepdims=True)
    ),
    "min_all": Case(lambda x: K.min(x), np.min),
    "argmax_last": Case(lambda x: K.argmax(x), lambda x: x.argmax(-1), "int64"),
    "argmax_axis1": Case(lambda x: K.argmax(x, axis=1), lambda x: x.argmax(1), "int64"),
    "reshape": Case(lambda x: K.reshape(x, (-1, 12)), lambda x: x.reshape(-1, 12)),
    "reshape_3d": Case(lambda x: K.reshape(x, (-1, 2, 6)), lambda x: x.reshape(-1, 2, 6)),
    "batch_flatten": Case(lambda x: K.batch_flatten(x), lambda x: x.reshape(len(x), -1)),
    "transpose": Case(lambda x: K.transpose(x), lambda x: x.transpose()),
    "transpose_axes": Case(lambda x: K.transpose(x, (0, 2, 1)), lambda x: x.transpose(0, 2, 1)),
    "expand_dims_last": Case(lambda x: K.expand_dims(x), lambda x: x[..., None]),
    "expand_dims_1": Case(lambda x: K.expand_dims(x, 1), lambda x: x[:, None]),
    "squeeze": Case(lambda x: K.squeeze(K.expand_dims(x, 2), 2), lambda x: x),
    "concatenate_last": Case(
        lambda x: K.concatenate([x, 2.0 * x]), lambda x: np.concatenate([x, 2 * x], -1)
    ),
    "concatenate_axis1": Case(
        lambda x: K.concatenate([x, K.square(x)], axis=1),
        lambda x: np.concatenate([x, x**2], 1),
    ),
    "dot_3d": Case(lambda x: K.dot(x, _const(W45)), lambda x: x @ W45),
    "dot_2d": Case(
        lambda x: K.dot(K.reshape(x, (-1, 4)), _const(W45)), lambda x: x.reshape(-1, 4) @ W45
    ),
    "one_hot": Case(
        lambda x: K.one_hot(K.argmax(x), 4), lambda x: np.eye(4)[x.argmax(-1)], "float32"
    ),
}


def _bce(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def _bce_logits(t, z):
    return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))


def _cce(t, p, axis=-1):
    p = p / p.sum(axis=axis, keepdims=True)
    return -(t * np.log(np.clip(p, EPS, 1 - EPS))).sum(axis)


def _log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


T4 = _softmax(_rng.normal(size=(3, 4))).astype("float32")
Z4 = (_rng.normal(size=(3, 4)) * 2).astype("float32")
Z4[0, 0], Z4[1, 1] = 30.0, -30.0  # saturated: only the logits give the right loss
B4 = (_rng.uniform(size=(3, 4)) > 0.5).astype("float32")
LABELS = np.array([3, 0, 2], dtype="int32")

LOSSES = {
    "bce_probabilities": Case(
        lambda t, z, b, y: K.binary_crossentropy(b, K.clip(K.sigmoid(z * 0.1), 0.0, 1.0)),
        lambda t, z, b, y: _bce(b, _sigmoid(z * 0.1)),
    ),
    "bce_after_sigmoid_uses_logits": Case(
        lambda t, z, b, y: K.binary_crossentropy(b, K.sigmoid(z)),
        lambda t, z, b, y: _bce_logits(b, z),
    ),
    "bce_from_logits": Case(
        lambda t, z, b, y: K.binary_crossentropy(t, z, from_logits=True),
        lambda t, z, b, y: _bce_logits(t, z),
    ),
    "cce_probabilities_renormalised": Case(
        lambda t, z, b, y: K.categorical_crossentropy(t, K.exp(z * 0.1)),
        lambda t, z, b, y: _cce(t, np.exp(z * 0.1)),
    ),
    "cce_after_softmax_uses_logits": Case(
        lambda t, z, b, y: K.categorical_crossentropy(t, K.softmax(z)),
        lambda t, z, b, y: -(t * _log_softmax(z)).sum(-1),
    ),
    "cce_from_logits": Case(
        lambda t, z, b, y: K.categorical_crossentropy(t, z, from_logits=True),
        lambda t, z, b, y: -(t * _log_softmax(z)).sum(-1),
    ),
    "cce_axis0": Case(
        lambda t, z, b, y: K.categorical_crossentropy(t, K.softmax(z, axis=0), axis=0),
        lambda t, z, b, y: -(t * _log_softmax(z, 0)).sum(0),
    ),
    "sparse_cce_int": Case(
        lambda t, z, b, y: K.sparse_categorical_crossentropy(y, K.softmax(z)),
        lambda t, z, b, y: -_log_softmax(z)[np.arange(len(y)), y.astype(int)],
    ),
    "sparse_cce_trailing_axis": Case(
        lambda t, z, b, y: K.sparse_categorical_crossentropy(K.expand_dims(y), z, True),
        lambda t, z, b, y: -_log_softmax(z)[np.arange(len(y)), y.astype(int)],
    ),
    "sparse_cce_float_labels": Case(
        lambda t, z, b, y: K.sparse_categorical_crossentropy(K.cast(y, "float32"), K.exp(z * 0.1)),
        lambda t, z, b, y: _cce(np.eye(4)[y.astype(int)], np.exp(z * 0.1)),
    ),
}

IMG = _rng.uniform(-1, 1, size=(2, 7, 6, 3)).astype("float32")
KERNELS = {
    "3x2": _rng.uniform(-1, 1, size=(3, 2, 3, 4)),
    "1x1": _rng.uniform(-1, 1, size=(1, 1, 3, 2)),
    "5x5": _rng.uniform(-1, 1, size=(5, 5, 3, 2)),
}
CONV_CONFIGS = [
    ("3x2", (1, 1), "valid"),
    ("3x2", (1, 1), "same"),
    ("3x2", (2, 2), "same"),
    ("3x2", (2, 3), "valid"),
    ("1x1", (1, 1), "valid"),
    ("5x5", (2, 1), "same"),
    ("5x5", (3, 3), "valid"),
]
POOL_CONFIGS = [
    ((2, 2), None, "valid"),
    ((2, 2), None, "same"),
    ((3, 3), (2, 2), "same"),
    ((3, 2), (1, 1), "valid"),
    ((3, 3), (3, 3), "same"),
    ((1, 1), (2, 2), "valid"),
]


def _conv_case(kernel_name: str, strides: tuple, padding: str) -> Case:
    kernel = KERNELS[kernel_name]
    return Case(
        lambda x: K.conv2d(x, _const(kernel), strides, padding),
        lambda x: naive.conv2d(x, kernel, strides, padding),
    )


def _pool_case(pool_size: tuple, strides: tuple | None, padding: str, mode: str) -> Case:
    return Case(
        lambda x: K.pool2d(x, pool_size, strides, padding, mode),
        lambda x: naive.pool2d(x, pool_size, strides, padding, mode),
    )


# (kernel (kh, kw, out, in=3), strides, padding, output height and width): the output size
# follows Keras 2's rule with and without output_padding; "2x2" with strides 2 tiles exactly
TRANSPOSE_KERNELS = {
    "3x3": _rng.uniform(-1, 1, size=(3, 3, 2, 3)),
    "2x2": _rng.uniform(-1, 1, size=(2, 2, 4, 3)),
    "3x2": _rng.uniform(-1, 1, size=(3, 2, 2, 3)),
}
TRANSPOSE_CONFIGS = [
    ("3x3", (2, 2), "same", (14, 12)),
    ("3x3", (2, 2), "valid", (15, 13)),
    ("2x2", (2, 2), "valid", (14, 12)),
    ("2x2", (2, 2), "valid", (15, 13)),  # output_padding 1
    ("3x2", (2, 1), "valid", (16, 7)),
    ("3x2", (3, 2), "same", (20, 11)),
    ("3x3", (1, 1), "same", (7, 6)),
]
DILATED_CONFIGS = [("3x2", (2, 2), "same"), ("3x2", (2, 3), "valid"), ("5x5", (1, 2), "same")]


def _transpose_case(kernel_name: str, strides: tuple, padding: str, hw: tuple) -> Case:
    kernel = TRANSPOSE_KERNELS[kernel_name]
    shape = (None, *hw, kernel.shape[2])
    return Case(
        lambda x: K.conv2d_transpose(x, _const(kernel), shape, strides, padding),
        lambda x: naive_spatial.conv2d_transpose(x, kernel, hw, strides, padding),
    )


def _dilated_case(kernel_name: str, rate: tuple, padding: str) -> Case:
    kernel = KERNELS[kernel_name]
    return Case(
        lambda x: K.conv2d(x, _const(kernel), (1, 1), padding, rate),
        lambda x: naive.conv2d(x, kernel, (1, 1), padding, rate),
    )


IMAGES = (
    {f"conv2d_{k}_s{s[0]}{s[1]}_{p}": _conv_case(k, s, p) for k, s, p in CONV_CONFIGS}
    | {
        f"pool2d_{mode}_{w[0]}{w[1]}_s{s}_{p}": _pool_case(w, s, p, mode)
        for w, s, p in POOL_CONFIGS
        for mode in ("max", "avg")
    }
    | {
        "spatial_2d_padding": Case(
            lambda x: K.spatial_2d_padding(x, ((1, 2), (0, 3))),
            lambda x: np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0))),
        ),
        "batch_flatten_image": Case(lambda x: K.batch_flatten(x), lambda x: x.reshape(len(x), -1)),
        "slice_block": Case(
            lambda x: K.slice(x, (0, 1, 2, 1), (-1, 3, 4, 2)), lambda x: x[:, 1:4, 2:6, 1:3]
        ),
    }
    | {
        f"conv2d_transpose_{k}_s{s[0]}{s[1]}_{p}_to{hw[0]}x{hw[1]}": _transpose_case(k, s, p, hw)
        for k, s, p, hw in TRANSPOSE_CONFIGS
    }
    | {
        f"conv2d_dilated_{k}_r{r[0]}{r[1]}_{p}": _dilated_case(k, r, p)
        for k, r, p in DILATED_CONFIGS
    }
)

X64 = _rng.uniform(-2, 2, size=(3, 4))
FLOAT64 = {
    "mul_python_scalar": Case(lambda x: x * 0.5, lambda x: x * 0.5),
    "add_python_int": Case(lambda x: x + 1, lambda x: x + 1),
    "exp": Case(lambda x: K.exp(x), np.exp),
    "mean": Case(lambda x: K.mean(x, axis=0), lambda x: x.mean(0)),
    "softmax": Case(lambda x: K.softmax(x), _softmax),
    "sigmoid": Case(lambda x: K.sigmoid(x), _sigmoid),
    "dot": Case(lambda x: K.dot(x, K.constant(W45, "float64")), lambda x: x @ W45),
    "clip": Case(lambda x: K.clip(x, -1.0, 1.0), lambda x: np.clip(x, -1, 1)),
    "relu": Case(lambda x: K.relu(x, 0.1), lambda x: _np_relu(x, 0.1)),
    "cce_from_logits": Case(
        lambda x: K.categorical_crossentropy(K.softmax(x * 0.5), x, from_logits=True),
        lambda x: -(_softmax(x * 0.5) * _log_softmax(x)).sum(-1),
    ),
}

GROUPS: dict[str, Group] = {
    "elementwise": Group([((None, 3, 4), "float32")], [X3], ELEMENTWISE),
    "reductions_shapes": Group([((None, 3, 4), "float32")], [X3], REDUCTIONS_AND_SHAPES),
    "losses": Group(
        [((None, 4), "float32")] * 3 + [((None,), "int32")], [T4, Z4, B4, LABELS], LOSSES
    ),
    "images": Group([((None, 7, 6, 3), "float32")], [IMG], IMAGES),
    "float64": Group([((None, 4), "float64")], [X64], FLOAT64),
}

_results: dict[tuple[str, str], list[np.ndarray]] = {}


def run_group(group_name: str) -> list[np.ndarray]:
    """Compile the group's step once per backend, run it once, and cache the outputs."""
    key = (K.name(), group_name)
    if key not in _results:
        group = GROUPS[group_name]

        def step(*inputs):
            return [case.build(*inputs) for case in group.cases.values()], []

        f = K.function(step, group.specs, name=f"test_ops_{group_name}")
        _results[key] = [np.asarray(v) for v in f(*group.inputs)]
    return _results[key]


def check_case(group_name: str, case_name: str) -> None:
    group = GROUPS[group_name]
    names = list(group.cases)
    case = group.cases[case_name]
    got = run_group(group_name)[names.index(case_name)]
    expected = np.asarray(case.reference(*[np.asarray(a, np.float64) for a in group.inputs]))
    assert got.shape == expected.shape, f"{case_name}: shape {got.shape} != {expected.shape}"
    dtype = case.dtype or group.specs[0][1]
    assert got.dtype == np.dtype(dtype), f"{case_name}: dtype {got.dtype} != {dtype}"
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, **TOLERANCE[got.dtype.name], err_msg=case_name)
    else:
        np.testing.assert_array_equal(got, expected.astype(got.dtype), err_msg=case_name)


def _cases(group_name: str) -> list[str]:
    return list(GROUPS[group_name].cases)


@pytest.mark.parametrize("case", _cases("elementwise"))
def test_elementwise(backend, case):
    check_case("elementwise", case)


@pytest.mark.parametrize("case", _cases("reductions_shapes"))
def test_reductions_and_shape_ops(backend, case):
    check_case("reductions_shapes", case)


@pytest.mark.parametrize("case", _cases("losses"))
def test_losses(backend, case):
    check_case("losses", case)


@pytest.mark.parametrize("case", _cases("images"))
def test_conv_pool_padding(backend, case):
    check_case("images", case)


@pytest.mark.parametrize("case", _cases("float64"))
def test_float64_stays_float64(backend, case):
    check_case("float64", case)


# ------------------------------------------------------------- config and variables


def test_config(backend):
    assert K.floatx() == "float32"
    assert K.epsilon() == pytest.approx(1e-7)
    assert K.image_data_format() == "channels_last"
    assert K.backend_device() in ("cpu", "gpu")


def test_variables_and_constants(backend):
    value = np.arange(6, dtype="float64").reshape(2, 3)
    v = K.variable(value, name="v")
    assert K.is_variable(v) and not K.is_variable(K.constant(value))
    assert K.int_shape(v) == (2, 3) and K.ndim(v) == 2
    assert K.dtype(v) == "float32"  # float input defaults to floatx()
    assert K.dtype(K.variable(value, dtype="float64")) == "float64"
    assert K.dtype(K.variable(np.array([1, 2], dtype="int64"))) == "int64"
    got = K.get_value(v)
    assert got.shape == (2, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, value)
    got[0, 0] = 100.0  # a copy, never a view
    assert K.get_value(v)[0, 0] == 0.0
    K.set_value(v, np.ones((2, 3)))
    np.testing.assert_array_equal(K.get_value(v), np.ones((2, 3)))
    with pytest.raises(ValueError):
        K.set_value(v, np.ones((3, 2)))
    c = K.constant([[1.0, 2.0]])
    assert K.int_shape(c) == (1, 2) and K.ndim(c) == 2 and K.dtype(c) == "float32"
    assert K.dtype(K.constant([1.0], dtype="float64")) == "float64"


def test_eval_and_cast(backend):
    v = K.variable(np.array([[-1.7, 0.4], [1.7, 2.5]]))
    np.testing.assert_allclose(K.eval(v * 2.0 + K.constant(1.0)), [[-2.4, 1.8], [4.4, 6.0]])
    truncated = K.eval(K.cast(v, "int32"))
    assert truncated.dtype == np.int32
    np.testing.assert_array_equal(truncated, [[-1, 0], [1, 2]])
    assert K.eval(K.cast(v, "float64")).dtype == np.float64
    np.testing.assert_array_equal(K.eval(K.round(K.constant([0.5, 1.5, 2.5, -0.5]))), [0, 2, 2, 0])


# ----------------------------------------------------------------- randomness


def _two_steps(op: Callable[[Any], Any]) -> list[np.ndarray]:
    f = K.function(lambda x: ([op(x)], []), [((None, 200), "float32")], name="random")
    ones = np.ones((5, 200), dtype="float32")
    return [f(ones)[0], f(ones)[0]]


def test_dropout(backend):
    first, second = _two_steps(lambda x: K.dropout(x, 0.25, seed=3))
    assert first.shape == (5, 200) and first.dtype == np.float32
    assert set(np.unique(first)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < np.mean(first == 0) < 0.35
    assert not np.array_equal(first, second)  # a fresh mask on every call
    again = _two_steps(lambda x: K.dropout(x, 0.25, seed=3))
    np.testing.assert_array_equal(first, again[0])  # the sequence is fixed by the seed
    np.testing.assert_array_equal(second, again[1])


def test_random_uniform_and_normal(backend):
    def step(x):
        uniform = K.random_uniform((100, 50), -2.0, 3.0, seed=5)
        normal = K.random_normal((100, 50), 1.0, 2.0, seed=6)
        return [uniform + 0.0 * K.sum(x), normal], []

    f = K.function(step, [((None,), "float32")], name="random_tensors")
    (u1, n1), (u2, n2) = f(np.zeros(1)), f(np.zeros(1))
    assert u1.shape == n1.shape == (100, 50)
    assert u1.dtype == n1.dtype == np.float32
    assert u1.min() >= -2.0 and u1.max() < 3.0 and abs(u1.mean() - 0.5) < 0.1
    assert abs(n1.mean() - 1.0) < 0.1 and abs(n1.std() - 2.0) < 0.1
    assert not np.array_equal(u1, u2) and not np.array_equal(n1, n2)
    assert K.eval(K.random_uniform((3,), dtype="float64", seed=1)).dtype == np.float64


# -------------------------------------------------------------------- function


def test_function_updates_are_simultaneous(backend):
    a, b = K.variable(np.array([1.0, 2.0])), K.variable(np.array([10.0, 20.0]))
    f = K.function(lambda x: ([a * x], [(a, b), (b, a + b)]), [((2,), "float32")])
    (out,) = f(np.array([2.0, 3.0]))
    np.testing.assert_allclose(out, [2.0, 6.0])  # outputs use the values before the updates
    np.testing.assert_allclose(K.get_value(a), [10.0, 20.0])
    np.testing.assert_allclose(K.get_value(b), [11.0, 22.0])
    f(np.array([0.0, 0.0]))
    np.testing.assert_allclose(K.get_value(a), [11.0, 22.0])
    np.testing.assert_allclose(K.get_value(b), [21.0, 42.0])


def test_function_inputs_outputs_and_errors(backend):
    w = K.variable(np.ones((3, 2)))

    def step(x, y):
        loss = K.mean(K.square(K.dot(x, w) - y))
        (g,) = K.gradients(loss, [w])
        return [loss, w, K.dot(x, w)], [(w, w - 0.1 * g)]

    f = K.function(step, [((None, 3), "float32"), ((None, 2), "float32")], name="sgd")
    x, y = np.arange(6, dtype="float64").reshape(2, 3), np.zeros((2, 2))
    loss, w_before, pred = f(x, y)  # float64 arrays are cast to the spec's float32
    assert np.shape(loss) == () and np.asarray(loss).dtype == np.float32
    assert pred.shape == (2, 2) and pred.dtype == np.float32
    np.testing.assert_allclose(loss, np.mean((x @ np.ones((3, 2))) ** 2), rtol=1e-6)
    np.testing.assert_array_equal(w_before, np.ones((3, 2)))  # outputs: before the update
    expected_grad = 2 * x.T @ (x @ np.ones((3, 2))) / 4
    np.testing.assert_allclose(K.get_value(w), 1 - 0.1 * expected_grad, rtol=1e-5)
    w_before[...] = 7.0  # returned arrays are the caller's own
    assert not np.any(K.get_value(w) == 7.0)
    loss5, _, pred5 = f(np.ones((5, 3)), np.zeros((5, 2)))  # the None dimension may vary
    assert pred5.shape == (5, 2)
    with pytest.raises(ValueError, match=r"\(None, 3\)"):
        f(np.ones(3), np.zeros((1, 2)))


def test_numpy_function_runs_on_each_call_of_a_compiled_step(backend):
    calls = []

    def host(a, b):
        calls.append(a.shape)
        return (a * 2 + b).astype("float32")

    def step(x, y):
        doubled = K.numpy_function(host, [x, y], (None, 3), "float32")
        return [K.sum(doubled, axis=1)], []

    compiled = K.function(step, [((None, 3), "float32"), ((None, 3), "float32")])
    x, y = np.arange(6, dtype="float32").reshape(2, 3), np.ones((2, 3), "float32")
    (total,) = compiled(x, y)
    np.testing.assert_allclose(total, (x * 2 + y).sum(axis=1))
    (total,) = compiled(x[:1], y[:1])
    np.testing.assert_allclose(total, (x[:1] * 2 + y[:1]).sum(axis=1))
    assert calls[-2:] == [(2, 3), (1, 3)]


# ------------------------------------------------------------------ contract coverage
# Which contract functions the tests above really reach through ``K`` is recorded while they
# run (a name in a comment or a string does not count), and checked by the last test.
_USED: set[str] = set()
_RAN: set[str] = set()


def _recording(name: str, function):
    def record(*args, **kwargs):
        _USED.add(name)
        return function(*args, **kwargs)

    return record


@pytest.fixture(scope="module", autouse=True)
def _record_contract_use():
    facade_getattr = K.__getattr__

    def recording_getattr(attr: str):
        if attr in interface.CONTRACT:
            _USED.add(attr)
        return facade_getattr(attr)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K, "__getattr__", recording_getattr)
        for name in set(interface.CONTRACT) & set(vars(K)):  # defined in the facade itself
            patch.setattr(K, name, _recording(name, vars(K)[name]))
        yield


@pytest.fixture(autouse=True)
def _record_test(request):
    _RAN.add(request.function.__name__)


def test_every_contract_function_is_exercised_here():
    others = {n for n in globals() if n.startswith("test_")} - {
        "test_every_contract_function_is_exercised_here"
    }
    if not others <= _RAN:
        pytest.skip("needs the whole module: it checks what the other tests called")
    assert set(interface.CONTRACT) - _USED == set()
