"""The numpy backend's lowering passes change how a step computes, never what it computes.

Hypothesis draws random graphs (element-wise programs with broadcasting, views and
reductions; small convolutional networks with pools, biases and activations) and random
shapes; each step is compiled with no pass (the spec) and with a random set of passes, then
called twice: outputs, gradients and the variables after the updates must agree, and the
first call's results must survive the second call (a buffer handed out while the caller
still holds it would overwrite them).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import backend as K
from minidl.backends import im2col
from minidl.backends.numpy import lowering

from .strategies import float_arrays

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
RTOL, ATOL = 1e-9, 1e-11  # float64; pooled slopes and threads may reorder a few sums


@pytest.fixture(autouse=True)
def _numpy_backend():
    K.set_backend("numpy")


def _run_twice(build, inputs_a, inputs_b, specs, passes):
    """Compile ``build`` with ``passes``; call it on two input sets; results and variables."""
    variables, step = build()
    with lowering.passes(passes):
        compiled = K.function(step, specs)
    first = compiled(*inputs_a)
    after_first = [K.get_value(v) for v in variables]
    second = compiled(*inputs_b)
    after_second = [K.get_value(v) for v in variables]
    return [np.array(a) for a in first], after_first, second, after_second, compiled


def _assert_same(spec_run, lowered_run):
    for spec_part, lowered_part in zip(spec_run[:4], lowered_run[:4]):
        assert len(spec_part) == len(lowered_part)
        for expected, got in zip(spec_part, lowered_part):
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


pass_sets = st.sets(st.sampled_from(lowering.PASSES)).map(lambda s: ",".join(sorted(s)))

# ------------------------------------------------------------- element-wise programs

UNARY = ["tanh", "sigmoid", "relu", "leaky", "square", "exp", "neg", "abs"]
BINARY = ["add", "sub", "mul", "maximum", "div"]
VIEWS = ["transpose", "reshape", "stop"]


def _apply_unary(name, x):
    return {
        "tanh": K.tanh,
        "sigmoid": K.sigmoid,
        "relu": K.relu,
        "leaky": lambda v: K.relu(v, alpha=0.1, max_value=2.0),
        "square": K.square,
        "exp": lambda v: K.exp(K.clip(v, -3.0, 3.0)),
        "neg": lambda v: -v,
        "abs": K.abs,
    }[name](x)


def _apply_binary(name, a, b):
    if name == "div":
        return a / (K.square(b) + 1.0)
    return {"add": a + b, "sub": a - b, "mul": a * b, "maximum": K.maximum(a, b)}[name]


@st.composite
def elementwise_programs(draw):
    """A random program over a ``(batch, rows, cols)`` input and two broadcast variables."""
    batch, rows, cols = (draw(st.integers(1, 4)) for _ in range(3))
    instructions = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["unary", "binary", "view", "reduce"]))
        a, b = draw(st.integers(0, 99)), draw(st.integers(0, 99))
        if kind == "unary":
            instructions.append((kind, draw(st.sampled_from(UNARY)), a, b))
        elif kind == "binary":
            instructions.append((kind, draw(st.sampled_from(BINARY)), a, b))
        elif kind == "view":
            instructions.append((kind, draw(st.sampled_from(VIEWS)), a, b))
        else:
            instructions.append((kind, draw(st.sampled_from(["sum", "mean"])), a, b))
    outputs = draw(st.lists(st.integers(0, 99), max_size=3))
    arrays = [
        draw(float_arrays((batch, rows, cols))),
        draw(float_arrays((batch, rows, cols))),
        draw(float_arrays((cols,))),
        draw(float_arrays((rows, 1))),
    ]
    return instructions, outputs, arrays


def _elementwise_step(program):
    instructions, output_picks, arrays = program
    _, _, bias, column = arrays

    def build():
        v_bias, v_column = K.variable(bias, dtype="float64"), K.variable(column, dtype="float64")

        def step(x, y):
            values = [x, y, v_bias, v_column]
            full = [x, y]  # values of the input's full shape, for in-place candidates
            for kind, name, a, b in instructions:
                left, right = full[a % len(full)], values[b % len(values)]
                if kind == "unary":
                    result = _apply_unary(name, left)
                elif kind == "binary":
                    result = _apply_binary(name, left, right)
                elif kind == "view":
                    if name == "transpose":
                        result = K.transpose(K.transpose(left, (0, 2, 1)), (0, 2, 1))
                    elif name == "reshape":
                        rows, cols = K.int_shape(left)[1:]
                        result = K.reshape(K.reshape(left, (-1, rows * cols)), (-1, rows, cols))
                    else:
                        result = K.stop_gradient(left) + left
                else:
                    reduce = K.sum if name == "sum" else K.mean
                    result = left - reduce(left, axis=1 + a % 2, keepdims=True)
                values.append(result)
                full.append(result)
            loss = K.sum(full[-1]) + K.mean(K.square(full[len(full) // 2]))
            grads = K.gradients(loss, [x, v_bias, v_column])
            outputs = [loss, *grads] + [full[i % len(full)] for i in output_picks]
            updates = [(v_bias, v_bias - 0.01 * grads[1]), (v_column, v_column + 0.01 * grads[2])]
            return outputs, updates

        return [v_bias, v_column], step

    return build


@SETTINGS
@given(elementwise_programs(), pass_sets)
def test_elementwise_programs_lowered_equal_the_spec(program, passes):
    x, y = program[2][:2]
    specs = [((None, *x.shape[1:]), "float64"), ((None, *y.shape[1:]), "float64")]
    build = _elementwise_step(program)
    spec_run = _run_twice(build, (x, y), (y, x), specs, "none")
    lowered_run = _run_twice(build, (x, y), (y, x), specs, passes or "none")
    _assert_same(spec_run, lowered_run)


# ------------------------------------------------------------ convolutional networks


def _output_size(size, window, strides, padding):
    if padding == "valid":
        return tuple((s - k) // step + 1 for s, k, step in zip(size, window, strides))
    return tuple(-(-s // step) for s, step in zip(size, strides))


@st.composite
def conv_networks(draw):
    """A random stack of conv (+ bias, activation) and pool layers, a dense head, SGD."""
    height, width = draw(st.integers(5, 11)), draw(st.integers(5, 11))
    channels = draw(st.integers(1, 3))
    layers = []
    size = (height, width)
    for _ in range(draw(st.integers(1, 3))):  # blocks: a conv layer, maybe a pool after it
        kernel = draw(st.sampled_from([(1, 1), (3, 3), (2, 3)]))
        filters = draw(st.integers(1, 6))
        strides = draw(st.sampled_from([(1, 1), (1, 1), (1, 2), (2, 2)]))
        padding = draw(st.sampled_from(["valid", "same"]))
        if padding == "valid" and (size[0] < kernel[0] or size[1] < kernel[1]):
            padding = "same"
        activation = draw(st.sampled_from(["relu", "tanh", "sigmoid", "leaky", None]))
        bias = draw(st.booleans())
        layers.append(("conv", kernel, filters, strides, padding, activation, bias))
        size = _output_size(size, kernel, strides, padding)
        if draw(st.integers(0, 4)) == 0 or min(size) < 2:
            continue
        window = draw(st.sampled_from([(2, 2), (2, 2), (3, 3), (2, 3)]))
        strides = draw(st.sampled_from([None, None, (1, 1), (2, 2)]))
        padding = draw(st.sampled_from(["valid", "same"]))
        if padding == "valid" and (size[0] < window[0] or size[1] < window[1]):
            padding = "same"
        mode = draw(st.sampled_from(["max", "max", "avg"]))
        layers.append(("pool", window, strides, padding, mode))
        size = _output_size(size, window, strides or window, padding)
    batch = draw(st.integers(1, 3))
    x = draw(float_arrays((batch, height, width, channels), -2.0, 2.0))
    x2 = draw(float_arrays((batch, height, width, channels), -2.0, 2.0))
    seed = draw(st.integers(0, 2**16))
    expose = draw(st.booleans())  # also return every layer's activation
    # a max-pool's gradient jumps where a window's maximum ties, and after one update the
    # spec and a lowered plan may hold weights an ulp apart (sums in another order): break
    # the exact ties that shrinking heads for (a constant image), or the second call's
    # gradients differ by O(1) for no fault of either
    jitter = np.random.default_rng(seed + 1).uniform(-1e-3, 1e-3, (2, *x.shape))
    return layers, x + jitter[0], x2 + jitter[1], seed, expose


def _conv_network_step(layers, channels, seed, expose, classes=3):
    def build():
        rng = np.random.default_rng(seed)
        params = []
        c = channels
        for layer in layers:
            if layer[0] == "conv":
                _, kernel, filters, *_, bias = layer
                params.append(K.variable(rng.normal(0, 0.5, (*kernel, c, filters)), "float64"))
                if bias:
                    params.append(K.variable(rng.normal(0, 0.1, (filters,)), "float64"))
                c = filters
        head = []

        def step(x, t):
            h, at, seen = x, 0, []
            for layer in layers:
                if layer[0] == "pool":
                    _, window, strides, padding, mode = layer
                    h = K.pool2d(h, window, strides, padding, mode)
                else:
                    _, _, _, strides, padding, activation, bias = layer
                    h = K.conv2d(h, params[at], strides, padding)
                    at += 1
                    if bias:
                        h = h + params[at]
                        at += 1
                    if activation == "leaky":
                        h = K.relu(h, alpha=0.2)
                    elif activation:
                        h = getattr(K, activation)(h)
                seen.append(h)
            flat = K.batch_flatten(h)
            if not head:
                head.append(
                    K.variable(rng.normal(0, 0.3, (K.int_shape(flat)[1], classes)), "float64")
                )
                head.append(K.variable(np.zeros(classes), "float64"))
            w, b = head
            p = K.softmax(K.dot(flat, w) + b)
            loss = K.mean(K.categorical_crossentropy(t, p))
            trained = params + [b]
            grads = K.gradients(loss, trained + [x])
            updates = [(v, v - 0.05 * g) for v, g in zip(trained, grads)]
            return [loss, p, *grads] + (seen if expose else []), updates

        return params, step

    return build


@settings(SETTINGS, max_examples=25)
@given(conv_networks(), pass_sets, st.booleans())
def test_conv_networks_lowered_equal_the_spec(network, passes, many_blocks):
    layers, x, x2, seed, expose = network
    t = np.eye(3)[np.arange(x.shape[0]) % 3]
    specs = [((None, *x.shape[1:]), "float64"), ((None, 3), "float64")]
    build = _conv_network_step(layers, x.shape[3], seed, expose)
    with pytest.MonkeyPatch.context() as patch:
        if many_blocks:  # tiny blocks on two threads: the threads pass really splits work
            patch.setattr(im2col, "IM2COL_BUDGET_BYTES", 64)
            patch.setattr(im2col, "MIN_BLOCK_PIXELS", 0)
            patch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
            patch.setattr(im2col, "WORKERS", 2)
        spec_run = _run_twice(build, (x, t), (x2, t), specs, "none")
        lowered_run = _run_twice(build, (x, t), (x2, t), specs, passes or "none")
    _assert_same(spec_run, lowered_run)


# ------------------------------------------------------------------- the switchboard


def test_every_pass_changes_the_plan_of_a_conv_layer_and_none_keeps_the_spec():
    def step(x, k, b):
        y = K.tanh(K.conv2d(x, k, padding="same") + b)
        loss = K.sum(K.square(K.pool2d(y, (2, 2))))
        return K.gradients(loss, [k, b]), []

    specs = [((4, 8, 8, 2), "float32"), ((3, 3, 2, 5), "float32"), ((5,), "float32")]
    with lowering.passes("none"):
        spec = K.function(step, specs)
    assert not any(s.into >= 0 or s.epilogue or s.buffer or s.workers != 1 for s in spec.plan.steps)
    assert [s.node.shape for s in spec.plan.steps if s.node.op == "tanh_grad"] == [(4, 8, 8, 5)]
    with lowering.passes("all"):
        lowered = K.function(step, specs)
    steps = lowered.plan.steps
    assert [s.node.shape for s in steps if s.node.op == "tanh_grad"] == [(4, 4, 4, 5)]
    assert any(s.epilogue is not None for s in steps)
    assert any(s.into >= 0 for s in steps)
    assert any(s.buffer is not None for s in steps)
    grad_kernel = [s for s in steps if s.node.op == "conv2d_grad_kernel"]
    assert grad_kernel  # the threads pass has a kernel gradient to split
    assert all(s.workers == im2col.worker_count() for s in grad_kernel)


def _training_step_of_three_convs():
    """A step updating three stacked conv layers by SGD (a training step's shape)."""
    kernels = [K.variable(np.full((3, 3, 2, 2), 0.1 * (i + 1))) for i in range(3)]

    def step(x):
        h = x
        for k in kernels:
            h = K.relu(K.conv2d(h, k, padding="same"))
        loss = K.sum(K.square(h))
        grads = K.gradients(loss, kernels)
        return [loss], [(k, k - 0.01 * g) for k, g in zip(kernels, grads)]

    return step, [((2, 6, 6, 2), "float32")], kernels


def test_ordering_runs_each_kernel_gradient_right_after_its_output_gradient():
    x = np.random.default_rng(2).normal(size=(2, 6, 6, 2)).astype("float32")
    results = {}
    for passes in ("none", "ordering"):
        step, specs, kernels = _training_step_of_three_convs()
        with lowering.passes(passes):
            compiled = K.function(step, specs)
        wanted = ("conv2d_grad_input", "conv2d_grad_kernel")
        order = [s.node.op[12:] for s in compiled.plan.steps if s.node.op in wanted]
        results[passes] = order, compiled(x)[0], [K.get_value(k) for k in kernels]
    # the spec's depth-first order: every input gradient first (the first layer's update
    # needs them all), so every activation and output gradient lives to the end
    assert results["none"][0] == ["input", "input", "kernel", "kernel", "kernel"]
    assert results["ordering"][0] == ["input", "kernel", "input", "kernel", "kernel"]
    np.testing.assert_array_equal(results["ordering"][1], results["none"][1])
    for got, expected in zip(results["ordering"][2], results["none"][2]):
        np.testing.assert_array_equal(got, expected)


def test_values_that_leave_the_step_never_get_a_reused_buffer():
    def step(x, k):
        y = K.conv2d(x, k)
        z = K.conv2d(y, k)  # y is an output and read again: it escapes
        return [y, K.reshape(z, (-1,)), K.sum(K.pool2d(z, (2, 2)))], []

    specs = [((2, 8, 8, 1), "float64"), ((3, 3, 1, 1), "float64")]
    with lowering.passes("all"):
        compiled = K.function(step, specs)
    buffered = {s.node.op for s in compiled.plan.steps if s.buffer is not None}
    assert buffered == {"pool2d"}  # y and z (seen through a view) are outputs
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(2, 8, 8, 1)), rng.normal(size=(3, 3, 1, 1))
    first = compiled(x, k)
    kept = [a.copy() for a in first]
    compiled(x + 1, k)
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)


def test_values_with_disjoint_lifetimes_share_one_buffer():
    def step(x, k):
        h = x
        for _ in range(4):
            h = K.tanh(K.conv2d(h, k, padding="same"))
        return [K.sum(h)], []

    specs = [((2, 6, 6, 3), "float64"), ((3, 3, 3, 3), "float64")]
    with lowering.passes("buffers"):  # each conv's value dies at its tanh: one buffer
        alone = K.function(step, specs)
    with lowering.passes("buffers,inplace"):  # tanh writes into it: lives to the next conv
        in_place = K.function(step, specs)
    for compiled, distinct in ((alone, 1), (in_place, 2)):
        buffers = [s.buffer for s in compiled.plan.steps if s.buffer is not None]
        assert len(buffers) == 4 and len({id(b) for b in buffers}) == distinct
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(2, 6, 6, 3)), rng.normal(0, 0.3, size=(3, 3, 3, 3))
    with lowering.passes("none"):
        expected = K.function(step, specs)(x, k)
    for compiled in (alone, in_place):
        for _ in range(2):
            np.testing.assert_allclose(compiled(x, k)[0], expected[0], rtol=1e-12)


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("", set(lowering.PASSES)),
        ("all", set(lowering.PASSES)),
        ("none", set()),
        ("fusion, inplace", {"fusion", "inplace"}),
        ("-threads", set(lowering.PASSES) - {"threads"}),
    ],
)
def test_pass_settings(setting, expected):
    assert lowering.enabled_passes(setting) == expected


def test_unknown_pass_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("MINIDL_NUMPY_PASSES", "fusion,inplce")
    with pytest.raises(ValueError, match=r"MINIDL_NUMPY_PASSES .* Received: 'fusion,inplce'"):
        K.function(lambda x: ([x * 2.0], []), [((2,), "float32")])
