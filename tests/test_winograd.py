"""Winograd F(2x2, 3x3) convolutions (``backends/winograd.py``) and the kernel choice.

The Winograd path only runs on 3x3 stride-1 convolutions with enough channels and tiles, so
the property tests lower those thresholds (``forced``) and assert that the path really runs.
References: ``naive.conv2d`` for the forward, and ``conv_references`` (the definitions, in
float64).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minidl.backends import conv_kernels, im2col, winograd

from . import conv_references as R
from . import naive
from . import strategies as S

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


@pytest.fixture
def forced(monkeypatch):
    """Every 3x3 stride-1 convolution takes the Winograd path, whatever its size."""
    monkeypatch.setattr(conv_kernels, "WINOGRAD", True)
    monkeypatch.setattr(conv_kernels, "MIN_TILES", 1)
    monkeypatch.setattr(conv_kernels, "FORWARD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_kernels, "INPUT_GRADIENT_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_kernels, "KERNEL_GRADIENT_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_kernels, "KERNEL_GRADIENT_MIN_TILES", 1)


@st.composite
def geometries(draw: st.DrawFn, max_side: int = 9, max_channels: int = 5) -> tuple:
    """NHWC input, 3x3 kernel, padding and output gradient (float64), all sizes drawn."""
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    c, k = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    padding = draw(st.sampled_from(["valid", "same"]))
    assume(padding == "same" or min(h, w) >= 3)
    x = draw(S.float_arrays((n, h, w, c)))
    kernel = draw(S.float_arrays((3, 3, c, k)))
    out_h, out_w = (h, w) if padding == "same" else (h - 2, w - 2)
    grad = draw(S.float_arrays((n, out_h, out_w, k)))
    return x, kernel, padding, grad


def _pads(x: np.ndarray, padding: str) -> tuple:
    if padding == "valid":
        return ((0, 0), (0, 0))
    return tuple(naive.same_split(size, 3, 1)[1:] for size in x.shape[1:3])


@SETTINGS
@given(case=geometries())
def test_forward_matches_loop_reference(forced, case):
    x, kernel, padding, _ = case
    pads = _pads(x, padding)
    out_h, out_w = x.shape[1] + sum(pads[0]) - 2, x.shape[2] + sum(pads[1]) - 2
    assert conv_kernels.uses_winograd(
        "forward", x.shape[0], out_h, out_w, kernel.shape, (1, 1), x.dtype
    )
    result = conv_kernels.conv2d_forward(x, kernel, (1, 1), pads, im2col.Scratch())
    expected = naive.conv2d(x, kernel, padding=padding)
    assert result.shape == expected.shape and result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(case=geometries())
def test_input_gradient_matches_its_definition(forced, case):
    x, kernel, padding, grad = case
    pads = _pads(x, padding)
    assert conv_kernels.uses_winograd(
        "input_gradient", x.shape[0], grad.shape[1], grad.shape[2], kernel.shape, (1, 1), x.dtype
    )
    result = conv_kernels.conv2d_input_gradient(
        grad, kernel, x.shape, (1, 1), pads, im2col.Scratch()
    )
    expected = R.input_gradient(grad, kernel, x.shape, pads)
    assert result.shape == x.shape
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


def test_epilogue_sees_every_block_once(forced):
    """The fused bias/activation runs on each output block once, odd sizes included."""
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal((2, 9, 7, 4)), rng.standard_normal((3, 3, 4, 3))
    calls = []

    def epilogue(block):
        calls.append(block.shape)
        block += 1.0

    pads = ((1, 1), (1, 1))
    result = winograd.conv2d_forward(x, kernel, pads, epilogue, workers=1)
    np.testing.assert_allclose(result, naive.conv2d(x, kernel, padding="same") + 1.0, atol=1e-10)
    assert sum(shape[0] * shape[1] for shape in calls) == 2 * 9


@pytest.mark.parametrize("workers", [1, 2])
def test_float32_error_stays_near_direct_convolution(workers):
    """At VGG16-like sizes the float32 error is within a few ulps of the output scale."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 16, 64))
    kernel = rng.standard_normal((3, 3, 64, 64)) * np.sqrt(2 / (9 * 64))
    pads = ((1, 1), (1, 1))
    exact = naive.conv2d(x, kernel, padding="same")
    x32, k32 = x.astype("float32"), kernel.astype("float32")
    fast = winograd.conv2d_forward(x32, k32, pads, workers=workers)
    direct = im2col.conv2d_forward(np.pad(x32, ((0, 0), (1, 1), (1, 1), (0, 0))), k32, (1, 1))
    scale = np.abs(exact).max()
    assert fast.dtype == np.float32
    assert np.abs(fast - exact).max() <= 4 * np.abs(direct - exact).max() + 1e-6 * scale
    assert np.abs(fast - exact).max() <= 1e-5 * scale


@SETTINGS
@given(case=geometries(), runs=st.integers(1, 3), workers=st.integers(1, 3))
def test_kernel_gradient_matches_its_definition(forced, monkeypatch, case, runs, workers):
    """Odd output sizes (zeros past the output), any split into runs, any thread count."""
    x, kernel, padding, grad = case
    pads = _pads(x, padding)
    assert conv_kernels.uses_winograd(
        "kernel_gradient", x.shape[0], grad.shape[1], grad.shape[2], kernel.shape, (1, 1), x.dtype
    )
    monkeypatch.setattr(winograd, "KERNEL_GRADIENT_RUNS", runs)
    monkeypatch.setattr(winograd, "MIN_BLOCK_TILES", 1)  # many blocks, so runs sum several
    monkeypatch.setattr(winograd, "BLOCK_BUDGET_BYTES", 1)
    monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(im2col, "WORKERS", workers)
    result = conv_kernels.conv2d_kernel_gradient(
        x, grad, kernel.shape, (1, 1), pads, im2col.Scratch()
    )
    assert result.shape == kernel.shape
    expected = R.kernel_gradient(x, grad, (3, 3, x.shape[3], grad.shape[3]), pads)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


def test_kernel_gradient_float32_error_and_thread_independence():
    """float32 error near im2col's at VGG16-like sizes; the same bits on 1 and 2 threads."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 14, 14, 128))
    grad = rng.standard_normal((4, 14, 14, 128)) * 1e-3
    pads = ((1, 1), (1, 1))
    exact = R.kernel_gradient(x, grad, (3, 3, x.shape[3], grad.shape[3]), pads)
    x32, g32 = x.astype("float32"), grad.astype("float32")
    fast = [winograd.conv2d_kernel_gradient(x32, g32, pads, workers=w) for w in (1, 2)]
    padded = np.pad(x32, ((0, 0), (1, 1), (1, 1), (0, 0)))
    direct = im2col.conv2d_kernel_gradient(padded, g32, (3, 3, 128, 128), (1, 1))
    scale = np.abs(exact).max()
    np.testing.assert_array_equal(fast[0], fast[1])
    assert fast[0].dtype == np.float32
    assert np.abs(fast[0] - exact).max() <= 4 * np.abs(direct - exact).max() + 1e-6 * scale


@settings(SETTINGS, max_examples=4)
@given(case=geometries(max_side=6, max_channels=3), filters=st.integers(32, 36))
def test_backend_conv2d_matches_references(forced, backend, case, filters):
    """``K.conv2d`` and its gradients on each backend (numpy and theano run these kernels;
    theano only from 32 filters, below which it builds a banded product in its graph)."""
    x, _, padding, _ = case
    rng = np.random.default_rng(filters)
    kernel = rng.standard_normal((3, 3, x.shape[3], filters))
    pads = _pads(x, padding)
    out_h, out_w = x.shape[1] + sum(pads[0]) - 2, x.shape[2] + sum(pads[1]) - 2
    grad = rng.standard_normal((x.shape[0], out_h, out_w, filters))

    results = R.backend_conv2d(x, kernel, grad, padding, "winograd_conv")
    R.assert_matches(x, kernel, grad, pads, results)


def test_the_winograd_path_is_taken_where_the_docs_say():
    """VGG16's and U-Net's 3x3 layers: input gradients from 16 channels, forwards and kernel
    gradients from 128 (``conv_kernels.kernel_for`` tries stacked rows first, below 128
    channels: see test_rowstack)."""
    if not conv_kernels.WINOGRAD:
        pytest.skip("MINIDL_WINOGRAD=0 in this run")
    f32 = np.dtype("float32")

    def uses(kind, batch, side, c, k, strides=(1, 1)):
        return conv_kernels.uses_winograd(kind, batch, side, side, (3, 3, c, k), strides, f32)

    assert uses("forward", 8, 14, 512, 512) and uses("forward", 8, 56, 128, 128)
    assert not uses("forward", 8, 112, 64, 64) and not uses("forward", 1, 256, 32, 32)
    assert uses("input_gradient", 8, 112, 64, 64) and uses("input_gradient", 1, 256, 32, 32)
    assert not uses("input_gradient", 8, 112, 3, 64)  # the RGB layer
    assert not uses("input_gradient", 8, 56, 64, 64, strides=(2, 2))
    assert not uses("forward", 1, 14, 512, 512)  # 49 tiles: the kernel transform dominates
    assert uses("kernel_gradient", 1, 14, 512, 512) and uses("kernel_gradient", 8, 28, 128, 256)
    assert not uses("kernel_gradient", 8, 112, 64, 64) and not uses(
        "kernel_gradient", 1, 4, 512, 512
    )
