"""Behaviour specific to the tensorflow backend: tf.function compilation, XLA, quiet start-up.

The backend-neutral op and gradient tests (``test_ops.py``, ``test_gradients.py``) run on
tensorflow through the ``backend`` fixture; this file checks what only TensorFlow has.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl import backend as K

from .conftest import backend_skip_reason

SKIP_REASON = backend_skip_reason("tensorflow")
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tf():
    """Make tensorflow the current backend and hand the ``tensorflow`` module to the test."""
    K.set_backend("tensorflow")
    from minidl.backends.tensorflow._runtime import tf as tensorflow

    return tensorflow


def counting(fn):
    """Wrap a step function so tests can see how often it was traced."""

    def step(*inputs):
        step.traces += 1
        return fn(*inputs)

    step.traces = 0
    return step


def test_choosing_tensorflow_prints_nothing():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "MINIDL_"))}
    env.pop("PYTHONWARNINGS", None)  # Python warnings are not what this test is about
    code = (
        "import os\n"
        "from minidl import backend as K\n"
        "K.set_backend('tensorflow')\n"
        "f = K.function(lambda x: ([K.sum(K.tanh(x))], []), [((None, 2), 'float32')])\n"
        "f([[1.0, 2.0]])\n"
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    assert result.stderr == ""


def test_parameters_are_tf_variables(tf):
    w = K.variable(np.ones((2, 3)), name="dense/kernel:0")
    assert isinstance(w, tf.Variable) and K.is_variable(w)
    assert not K.is_variable(K.constant(1.0))
    assert K.dtype(w) == "float32" and K.int_shape(w) == (2, 3)
    assert K.dtype(K.variable(np.ones(2), dtype="float64")) == "float64"
    assert K.dtype(K.variable(np.arange(3))) == "int64"


def test_one_trace_serves_every_batch_size(tf):
    w = K.variable(np.ones((3, 1)))
    step = counting(lambda x: ([K.dot(x, w)], []))
    f = K.function(step, [((None, 3), "float32")])
    for batch in (4, 1, 7):
        (out,) = f(np.ones((batch, 3)))
        assert out.shape == (batch, 1)
    assert step.traces == 1


def test_variables_created_while_tracing_do_not_retrace(tf):
    w = K.variable(np.zeros(2))

    def step(x):
        velocity = K.variable(np.zeros(2), name="slot")  # what an optimizer does lazily
        new_velocity = velocity * 0.5 + x
        return [new_velocity], [(velocity, new_velocity), (w, w + new_velocity)]

    step = counting(step)
    f = K.function(step, [((2,), "float32")])
    gc.collect()  # the step alone keeps the slot's state alive
    f(np.ones(2))
    (out,) = f(np.ones(2))
    np.testing.assert_allclose(out, [1.5, 1.5])
    np.testing.assert_allclose(K.get_value(w), [2.5, 2.5])
    assert step.traces == 1


def test_updates_read_pre_step_values_and_outputs_come_first(tf):
    a, b = K.variable([1.0]), K.variable([2.0])
    f = K.function(lambda: ([a * 10.0, b], [(a, b), (b, a)]), [])
    out_a, out_b = f()
    assert out_a.tolist() == [10.0] and out_b.tolist() == [2.0]
    assert K.get_value(a).tolist() == [2.0] and K.get_value(b).tolist() == [1.0]


def test_updates_written_in_place_equal_the_plain_writes(tf, monkeypatch):
    # ``v - x * d`` (x scalar), ``v - d`` and ``d + v`` are written in place (a lowering,
    # MINIDL_TF_IN_PLACE); every update still reads the values from before the step;
    # ``c - 1.0`` broadcasts, so it stays a plain write.
    writers = {"AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp"}
    writers.add("ResourceApplyGradientDescent")

    def run(setting: str) -> tuple:
        monkeypatch.setenv("MINIDL_TF_IN_PLACE", setting)
        a, b = K.variable([1.5, -2.0]), K.variable([0.25, 3.0])
        c, d = K.variable(np.ones(2)), K.variable([0.1, 0.7])
        updates = lambda x: [(a, a - x * b), (b, a + b), (c, c - 1.0), (d, d - a)]  # noqa: E731
        f = K.function(lambda x: ([a * 1.0], updates(x)), [((), "float32")])
        (out,) = f(np.float32(3.0))
        ops = f.concrete.graph.get_operations()
        writes = sorted(op.type for op in ops if op.type in writers)
        return out, [K.get_value(v) for v in (a, b, c, d)], writes

    out, values, writes = run("1")
    assert writes == sorted(writers)
    np.testing.assert_array_equal(out, [1.5, -2.0])
    want = [[0.75, -11.0], [1.75, 1.0], [0.0, 0.0], [0.1 - 1.5, 0.7 + 2.0]]
    for got, expected in zip(values, want):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    plain_out, plain_values, plain_writes = run("0")
    assert plain_writes == ["AssignVariableOp"] * 4
    np.testing.assert_array_equal(out, plain_out)
    for got, plain in zip(values, plain_values):
        np.testing.assert_array_equal(got, plain)


def test_xla_setting_compiles_with_jit(tf, monkeypatch):
    x = np.linspace(-2, 2, 12, dtype="float32").reshape(3, 4)
    step = lambda v: ([K.sum(K.tanh(v) * 2.0, axis=1)], [])  # noqa: E731
    plain = K.function(step, [((None, 4), "float32")])
    monkeypatch.setenv("MINIDL_TF_XLA", "1")
    jitted = K.function(step, [((None, 4), "float32")])
    assert jitted.concrete.function_def.attr["_XlaMustCompile"].b
    assert "_XlaMustCompile" not in plain.concrete.function_def.attr
    np.testing.assert_allclose(jitted(x)[0], plain(x)[0], rtol=1e-5, atol=1e-6)
    assert jitted(x[:1])[0].shape == (1,)


def test_gradients_reach_inputs_and_unconnected_get_zeros(tf):
    w = K.variable(np.full((2, 2), 3.0))
    unused = K.variable(np.ones(3))

    def step(x):
        loss = K.sum(K.dot(x, w))
        return K.gradients(loss, [w, x, unused]), []

    gw, gx, gu = K.function(step, [((None, 2), "float32")])(np.ones((5, 2)))
    np.testing.assert_allclose(gw, np.full((2, 2), 5.0))
    np.testing.assert_allclose(gx, np.full((5, 2), 6.0))
    np.testing.assert_array_equal(gu, np.zeros(3))


def test_gradients_outside_a_step_explain_themselves(tf):
    x = K.variable(np.ones(2))
    with pytest.raises(RuntimeError, match="inside the function passed to K.function"):
        K.gradients(K.sum(x), [x])


def test_ops_run_eagerly_outside_a_step(tf):
    np.testing.assert_array_equal(K.eval(K.relu(K.constant([-1.0, 2.0]))), [0.0, 2.0])
    x64 = K.constant(np.ones(2), dtype="float64")
    assert K.dtype(x64 * 2.0 + 1) == "float64"
    assert K.dtype(K.maximum(x64, 0.5)) == "float64"


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "traced"])
def test_crossentropy_uses_logits_behind_softmax_and_sigmoid(tf, eager):
    logits = np.array([[200.0, 0.0, -200.0]], dtype="float32")
    target = np.array([[0.0, 0.0, 1.0]], dtype="float32")

    def losses():
        z = K.constant(logits)
        cce = K.categorical_crossentropy(K.constant(target), K.softmax(z))
        cce_axis0 = K.categorical_crossentropy(
            K.constant(target.T), K.softmax(K.constant(logits.T), axis=0), axis=0
        )
        bce = K.binary_crossentropy(K.constant(target), K.sigmoid(z))
        return [cce, cce_axis0, bce]

    if eager:
        cce, cce_axis0, bce = [K.eval(t) for t in losses()]
    else:
        cce, cce_axis0, bce = K.function(lambda: (losses(), []), [])()
    np.testing.assert_allclose(cce, [400.0], rtol=1e-5)  # a clipped log would give ~16.1
    np.testing.assert_allclose(cce_axis0, [400.0], rtol=1e-5)
    np.testing.assert_allclose(bce, [[200.0, np.log(2.0), 200.0]], rtol=1e-5)


def test_crossentropy_recognises_a_plain_tensorflow_softmax_in_a_trace(tf):
    def step(z):
        return [K.categorical_crossentropy(K.constant([[1.0, 0.0]]), tf.nn.softmax(z))], []

    (loss,) = K.function(step, [((None, 2), "float32")])(np.array([[-300.0, 0.0]]))
    np.testing.assert_allclose(loss, [300.0], rtol=1e-5)


def test_dropout_is_fresh_per_call_and_fixed_by_seed(tf):
    def make():
        return K.function(lambda x: ([K.dropout(x, 0.5, seed=7)], []), [((None, 64), "float32")])

    first, second = make(), make()
    ones = np.ones((2, 64), dtype="float32")
    a1, a2 = first(ones)[0], first(ones)[0]
    b1, b2 = second(ones)[0], second(ones)[0]
    assert not np.array_equal(a1, a2)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert set(np.unique(a1)) == {0.0, 2.0}
    eager = [K.eval(K.dropout(K.constant(ones), 0.5, seed=11)) for _ in range(2)]
    assert not np.array_equal(*eager)


def test_input_checks_name_the_shapes(tf):
    f = K.function(lambda x: ([K.sum(x)], []), [((None, 3), "float32")], name="train")
    with pytest.raises(ValueError, match=r"\(None, 3\).*Received: an array of shape \(3,\)"):
        f(np.ones(3))
    with pytest.raises(ValueError, match=r"Received: an array of shape \(2, 4\)"):
        f(np.ones((2, 4)))
    with pytest.raises(TypeError, match="takes 1 input arrays"):
        f(np.ones((2, 3)), np.ones((2, 3)))
    assert f(np.ones((2, 3), dtype="int64"))[0] == 6.0  # cast to the spec's dtype


def test_backend_device_matches_what_tensorflow_sees(tf):
    expected = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    assert K.backend_device() == expected
