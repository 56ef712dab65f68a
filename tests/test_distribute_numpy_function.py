"""K.numpy_function, the host callback the MPI all-reduce runs in, on every backend."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import backend as K


def test_runs_on_every_call_with_the_values_of_the_step(backend):
    weights = K.variable(np.arange(6, dtype="float32").reshape(3, 2))
    seen = []

    def record_and_double(values, step_count):
        seen.append((values.copy(), int(step_count)))
        return values * 2.0

    counter = K.variable(np.int64(0))

    def step(x):
        grown = K.numpy_function(record_and_double, [x, counter], (None, 2), "float32")
        return [K.sum(grown)], [(counter, counter + 1)]

    compiled = K.function(step, [((None, 2), "float32")])
    first = compiled(np.ones((3, 2)))
    second = compiled(np.full((1, 2), 5.0))
    assert [float(v) for v in (first[0], second[0])] == [12.0, 20.0]
    assert [s for _, s in seen] == [0, 1]  # called once per run, with that run's values
    np.testing.assert_array_equal(seen[1][0], np.full((1, 2), 5.0, "float32"))
    assert K.get_value(weights).shape == (3, 2)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.integers(1, 5), cols=st.integers(1, 4), scale=st.floats(-3, 3, width=32))
def test_result_is_a_constant_for_gradients(backend, rows, cols, scale):
    w = K.variable(np.ones((rows, cols), dtype="float32"))

    def step():
        hosted = K.numpy_function(lambda a: a * scale, [w], (rows, cols), "float32")
        loss = K.sum(w * hosted) + K.sum(hosted)
        (grad,) = K.gradients(loss, [w])
        return [hosted, grad], []

    hosted, grad = K.function(step, [])()
    np.testing.assert_allclose(hosted, np.full((rows, cols), scale), rtol=1e-6, atol=1e-6)
    # d/dw of sum(w * c) + sum(c) with c held constant is c, not 2 * scale * w + scale
    np.testing.assert_allclose(grad, np.full((rows, cols), scale), rtol=1e-6, atol=1e-6)
