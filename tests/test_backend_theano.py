"""Behaviour specific to the theano backend (PyTensor): modes, flags, one compiled call per step.

The backend-neutral op and gradient tests (``test_ops.py``, ``test_gradients.py``) run on theano
through the ``backend`` fixture, in the quick-to-compile ``PY`` mode that ``conftest.py`` selects;
the model-level tests at the end of this file compile with the backend's default mode (C with
BLAS, or NUMBA), which is what users get.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl import backend as K
from minidl.backends import registry

from . import naive
from .conftest import backend_skip_reason

SKIP_REASON = backend_skip_reason("theano")
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def theano():
    """Make theano the current backend and hand its package to the test."""
    K.set_backend("theano")
    from minidl.backends import theano as backend_package

    return backend_package


@pytest.fixture()
def default_mode(monkeypatch):
    """Compile with the backend's default mode (what users get), not the test suite's."""
    monkeypatch.delenv("MINIDL_THEANO_MODE", raising=False)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MINIDL_BACKEND": "theano", **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environment
    )


# ------------------------------------------------------------------ selection and flags


def test_pytensor_is_an_alias_of_theano():
    assert registry.resolve("pytensor").name == "theano"
    K.set_backend("pytensor")
    assert K.name() == "theano"


def test_loading_prints_nothing_and_sets_float32_without_clobbering_user_flags():
    code = (
        "import pytensor\n"
        "from minidl import backend as K\n"
        "K.floatx()\n"
        "print(pytensor.config.floatX, bool(pytensor.config.blas__ldflags))\n"
    )
    plain = _run_python(code, PYTENSOR_FLAGS="")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split()[0] == "float32" and plain.stderr == ""
    user = _run_python(code, PYTENSOR_FLAGS="floatX=float64,blas__ldflags=")
    assert user.returncode == 0, user.stderr
    assert user.stdout.split() == ["float64", "False"]


def test_blas_flags_link_scipys_openblas_when_it_exports_prefixed_symbols(theano):
    flags = theano.settings.blas_ldflags()
    if not flags:
        pytest.skip("no SciPy-bundled OpenBLAS with scipy_-prefixed symbols here")
    assert "-l:libscipy_openblas" in flags and "-Dsgemm_=scipy_sgemm_" in flags


def test_mode_setting_selects_the_pytensor_linker(theano, monkeypatch):
    from pytensor.link.numba.linker import NumbaLinker

    monkeypatch.setenv("MINIDL_THEANO_MODE", "numba")
    step = K.function(lambda x: ([x * 2.0], []), [((None,), "float32")], name="numba_step")
    assert step.mode == "NUMBA"
    assert isinstance(step.pytensor_function.maker.linker, NumbaLinker)
    monkeypatch.setenv("MINIDL_THEANO_MODE", "fast_compile")
    step = K.function(lambda x: ([x * 2.0], []), [((None,), "float32")])
    assert step.mode == "FAST_COMPILE"
    np.testing.assert_array_equal(step(np.arange(3))[0], [0.0, 2.0, 4.0])


def test_unknown_mode_lists_the_valid_ones(theano, monkeypatch):
    monkeypatch.setenv("MINIDL_THEANO_MODE", "TURBO")
    with pytest.raises(ValueError, match="NUMBA.*Received: MINIDL_THEANO_MODE='TURBO'"):
        K.function(lambda x: ([x], []), [((None,), "float32")])


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed")
def test_jax_mode_without_jax_says_what_to_install(theano, monkeypatch):
    monkeypatch.setenv("MINIDL_THEANO_MODE", "JAX")
    with pytest.raises(ImportError, match="pip install jax"):
        K.function(lambda x: ([x], []), [((None,), "float32")])
    assert K.backend_device() == "cpu"


# ------------------------------------------------------------------------- compiling


def test_a_step_is_one_pytensor_function_with_simultaneous_updates(theano, caplog):
    from pytensor.compile.executor import Function

    a, b = K.variable(np.float32(1.0), name="a"), K.variable(np.float32(2.0), name="b")
    with caplog.at_level(logging.INFO, logger="minidl"):
        step = K.function(lambda x: ([a + x], [(a, b), (b, a)]), [((), "float32")], name="swap")
    assert isinstance(step.pytensor_function, Function)
    assert step.compile_seconds > 0
    assert any("compiled step 'swap'" in r.getMessage() for r in caplog.records)
    assert step(10.0)[0] == 11.0
    assert (K.get_value(a), K.get_value(b)) == (2.0, 1.0)
    assert step.first_call_seconds is not None


def test_input_checks_name_the_shapes(theano):
    f = K.function(lambda x: ([K.sum(x)], []), [((None, 3), "float32")], name="train")
    with pytest.raises(ValueError, match=r"\(None, 3\).*Received: an array of shape \(3,\)"):
        f(np.ones(3))
    with pytest.raises(ValueError, match=r"Received: an array of shape \(2, 4\)"):
        f(np.ones((2, 4)))
    with pytest.raises(TypeError, match="takes 1 input arrays"):
        f(np.ones((2, 3)), np.ones((2, 3)))
    assert f(np.ones((2, 3), dtype="int64"))[0] == 6.0  # cast to the spec's dtype


def test_python_floats_take_the_steps_float_dtype_exactly(theano):
    float64_step = K.function(lambda x: ([x + 0.3], []), [((None,), "float64")])
    assert float64_step(np.zeros(1))[0][0] == 0.3  # not float32(0.3) widened
    float32_step = K.function(lambda x: ([x + np.float64(0.3)], []), [((None,), "float32")])
    assert float32_step(np.zeros(1))[0].dtype == np.float32


def test_gradients_zero_for_unconnected_and_reach_traced_inputs(theano):
    v, unused = K.variable(np.ones(3)), K.variable(np.ones(2))

    def step(x):
        loss = K.sum(x * v) + K.sum(K.stop_gradient(x * v) * v)
        return K.gradients(loss, [unused, x, v]), []

    g_unused, g_x, g_v = K.function(step, [((None, 3), "float32")])(np.full((2, 3), 2.0))
    np.testing.assert_array_equal(g_unused, [0.0, 0.0])
    np.testing.assert_array_equal(g_x, np.ones((2, 3)))
    np.testing.assert_array_equal(g_v, [8.0, 8.0, 8.0])  # 2 * 2 from x, 2 * 2 through the copy


def test_tied_maxima_share_the_gradient_and_maximum_prefers_x(theano):
    def step(x):
        return K.gradients(K.max(x), [x]) + K.gradients(K.sum(K.maximum(x, 1.0)), [x]), []

    g_max, g_maximum = K.function(step, [((2, 2), "float32")])(np.array([[1, 1], [0, 1]]))
    np.testing.assert_allclose(g_max, [[1 / 3, 1 / 3], [0, 1 / 3]], rtol=1e-6)
    np.testing.assert_array_equal(g_maximum, [[1, 1], [0, 1]])


def test_crossentropy_uses_the_logits_behind_sigmoid_and_softmax(theano):
    def step(z):
        return [
            K.categorical_crossentropy(K.constant([[1.0, 0.0]]), K.softmax(z)),
            K.binary_crossentropy(K.constant([[1.0, 0.0]]), K.sigmoid(z)),
            K.categorical_crossentropy(K.constant([[1.0, 0.0]]), K.softmax(z) * 1.0),
        ], []

    cce, bce, clipped = K.function(step, [((1, 2), "float32")])(np.array([[0.0, 100.0]]))
    np.testing.assert_allclose(cce, [100.0], rtol=1e-6)  # clipping would give -log(1e-7)
    np.testing.assert_allclose(bce, [[np.log(2.0), 100.0]], rtol=1e-6)
    np.testing.assert_allclose(clipped, [-np.log(1e-7)], rtol=1e-4)


def test_dropout_is_fresh_per_call_and_fixed_by_seed(theano):
    def make():
        return K.function(
            lambda x: ([K.dropout(x, 0.5, seed=7), K.random_normal((3,), seed=7)], []),
            [((None, 50), "float32")],
        )

    first, second = make(), make()
    ones = np.ones((4, 50), "float32")
    a1, a2, b1 = first(ones), first(ones), second(ones)
    assert not np.array_equal(a1[0], a2[0]) and not np.array_equal(a1[1], a2[1])
    for got, want in zip(b1, a1):
        np.testing.assert_array_equal(got, want)
    assert set(np.unique(a1[0])) <= {0.0, 2.0}


# ------------------------------------------------------------- convolution and pooling


@pytest.mark.parametrize(
    "kernel, strides, padding",
    [((1, 1), (1, 1), "valid"), ((1, 1), (2, 2), "same"), ((3, 2), (2, 1), "same")],
)
def test_conv2d_im2col_matches_the_loop_reference_with_unknown_spatial_size(
    theano, kernel, strides, padding
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    w = rng.normal(size=(*kernel, 3, 4)).astype("float32")
    spec = (None, 7, 6, 3) if strides != (1, 1) else (None, None, None, 3)
    step = K.function(
        lambda a: ([K.conv2d(a, K.constant(w), strides, padding)], []), [(spec, "float32")]
    )
    np.testing.assert_allclose(
        step(x)[0], naive.conv2d(x, w, strides, padding), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("pool_mode", ["max", "avg"])
def test_block_pooling_and_window_pooling_agree(theano, pool_mode):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 8, 2))

    def step(a):
        blocks = K.pool2d(a, (3, 2), padding="valid", pool_mode=pool_mode)  # reshape path
        windows = K.pool2d(a, (3, 2), (3, 2), "same", pool_mode)  # slice path
        loss = K.sum(blocks * blocks)
        return [blocks, windows, *K.gradients(loss, [a])], []

    blocks, windows, grad = K.function(step, [((None, 9, 8, 2), "float64")])(x)
    reference = naive.pool2d(x, (3, 2), None, "valid", pool_mode)
    np.testing.assert_allclose(blocks, reference, rtol=1e-12)
    np.testing.assert_allclose(windows, naive.pool2d(x, (3, 2), None, "same", pool_mode))
    if pool_mode == "max":
        expected = naive.max_pool_gradient(x, 2 * reference, (3, 2))
        np.testing.assert_allclose(grad, expected, rtol=1e-12)


# ------------------------------------------------------ model-level, in the default mode


def _train(kind: str, steps: int) -> list[float]:
    """Losses of a few SGD steps of a small MLP or CNN on fixed data (current backend)."""
    rng = np.random.default_rng(3)
    if kind == "mlp":
        x = rng.normal(size=(16, 20)).astype("float32")
        shapes = [(20, 12), (12,), (12, 3), (3,)]
    else:
        x = rng.normal(size=(4, 10, 10, 1)).astype("float32")
        shapes = [(2, 2, 1, 4), (4,), (3 * 3 * 4, 3), (3,)]
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, len(x))]
    params = [K.variable(rng.normal(0, 0.3, s)) for s in shapes]
    rate = 0.5 if kind == "mlp" else 0.1

    def forward(a):
        w1, b1, w2, b2 = params
        if kind == "mlp":
            return K.softmax(K.dot(K.tanh(K.dot(a, w1) + b1), w2) + b2)
        h = K.relu(K.conv2d(a, w1) + b1)  # few distinct ops: a cold C compile stays short
        h = K.pool2d(h, (3, 3))
        return K.softmax(K.dot(K.batch_flatten(h), w2) + b2)

    def step(a, t):
        loss = K.mean(K.categorical_crossentropy(t, forward(a)))
        grads = K.gradients(loss, params)
        return [loss], [(p, p - rate * g) for p, g in zip(params, grads)]

    f = K.function(step, [((None, *x.shape[1:]), "float32"), ((None, 3), "float32")])
    return [float(f(x, y)[0]) for _ in range(steps)]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_models_train_identically_in_the_default_mode_and_on_numpy(default_mode, kind):
    K.set_backend("numpy")
    expected = _train(kind, 4)
    K.set_backend("theano")
    got = _train(kind, 4)
    np.testing.assert_allclose(got, expected, rtol=2e-4)
    assert got[-1] < got[0]
