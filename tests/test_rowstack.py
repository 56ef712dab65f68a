"""Stride-1 convolutions by stacked rows (``backends/rowstack.py``) and where they run.

References come from the definitions (``conv_references``, float64). Kernel sizes, padding,
block sizes and thread counts are all drawn; the module is called directly, since its channel
thresholds only decide dispatch.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minidl.backends import conv_kernels, im2col, rowstack

from . import conv_references as R
from . import naive
from . import strategies as S

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


@st.composite
def geometries(draw: st.DrawFn, input_gradient: bool = False) -> tuple:
    """NHWC input, kernel, pads and output gradient (float64), all sizes drawn.

    For an input gradient the pads stay below the kernel (rowstack's condition there).
    """
    n = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    most_h, most_w = (kh - 1, kw - 1) if input_gradient else (kh, kw)
    pads = tuple(
        (draw(st.integers(0, most)), draw(st.integers(0, most))) for most in (most_h, most_w)
    )
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    assume(h + sum(pads[0]) >= kh and w + sum(pads[1]) >= kw)
    c, k = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x = draw(S.float_arrays((n, h, w, c)))
    kernel = draw(S.float_arrays((kh, kw, c, k)))
    out_h, out_w = h + sum(pads[0]) - kh + 1, w + sum(pads[1]) - kw + 1
    grad = draw(S.float_arrays((n, out_h, out_w, k)))
    return x, kernel, pads, grad


@pytest.fixture
def blocks(monkeypatch):
    """Set the block size and thread count a case draws (tiny blocks: many of them)."""

    def choose(tiny: bool, workers: int) -> None:
        monkeypatch.setattr(rowstack, "BLOCK_BUDGET_BYTES", 1 if tiny else 2**20)
        monkeypatch.setattr(rowstack, "MIN_BLOCK_PIXELS", 1 if tiny else 1024)
        monkeypatch.setattr(im2col, "PARALLEL_MIN_BYTES", 0)
        monkeypatch.setattr(im2col, "WORKERS", workers)

    return choose


@SETTINGS
@given(case=geometries(), tiny=st.booleans(), workers=st.integers(1, 3))
def test_forward_matches_its_definition(blocks, case, tiny, workers):
    x, kernel, pads, grad = case
    blocks(tiny, workers)
    result = rowstack.conv2d_forward(x, kernel, pads)
    assert result.shape == grad.shape and result.dtype == np.float64
    expected = R.forward(x, kernel, pads, grad.shape)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(case=geometries(input_gradient=True), tiny=st.booleans(), workers=st.integers(1, 3))
def test_input_gradient_matches_its_definition(blocks, case, tiny, workers):
    x, kernel, pads, grad = case
    blocks(tiny, workers)
    result = rowstack.conv2d_input_gradient(grad, kernel, pads)
    assert result.shape == x.shape
    expected = R.input_gradient(grad, kernel, x.shape, pads)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


def test_input_gradient_refuses_pads_past_the_kernel():
    grad, kernel = np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 2, 2))
    with pytest.raises(ValueError, match="pads below the kernel"):
        rowstack.conv2d_input_gradient(grad, kernel, ((3, 0), (1, 1)))


def test_epilogue_sees_every_output_row_once(monkeypatch):
    """The fused bias/activation runs on each block of the result once, in many blocks."""
    monkeypatch.setattr(rowstack, "BLOCK_BUDGET_BYTES", 1)
    monkeypatch.setattr(rowstack, "MIN_BLOCK_PIXELS", 1)
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal((2, 9, 7, 4)), rng.standard_normal((3, 3, 4, 3))
    rows = []

    def epilogue(block):
        rows.append(block.shape[0] * block.shape[1])
        block += 1.0

    result = rowstack.conv2d_forward(x, kernel, ((1, 1), (1, 1)), epilogue, workers=1)
    expected = naive.conv2d(x, kernel, padding="same") + 1.0
    np.testing.assert_allclose(result, expected, atol=1e-10)
    assert sum(rows) == 2 * 9 and len(rows) > 2


def test_the_kernel_choice_on_vgg16_and_unet_layers():
    """Stacked rows below 128 channels, Winograd from there, im2col for the rest."""
    if not (conv_kernels.ROWSTACK and conv_kernels.WINOGRAD):
        pytest.skip("MINIDL_ROWSTACK=0 or MINIDL_WINOGRAD=0 in this run")
    f32, same = np.dtype("float32"), ((1, 1), (1, 1))

    def choice(kind, side, c, k, strides=(1, 1), pads=same, window=(3, 3), batch=8):
        shape = (*window, c, k)
        return conv_kernels.kernel_for(kind, (batch, side, side), shape, strides, pads, f32)

    for kind in ("forward", "input_gradient"):
        assert choice(kind, 112, 64, 64) == "rowstack"  # VGG16's first block
        assert choice(kind, 128, 32, 32) == "rowstack"  # U-Net's first level
        assert choice(kind, 56, 128, 128) == "winograd"
        assert choice(kind, 56, 64, 64, strides=(2, 2)) == "im2col"
    # kernel gradients: Winograd from 128 channels, im2col below (stacked rows were no faster)
    assert choice("kernel_gradient", 112, 64, 64) == "im2col"
    assert choice("kernel_gradient", 56, 128, 128) == "winograd"
    assert choice("forward", 112, 3, 64) == "im2col"  # the RGB layer: runs of 3 channels
    assert choice("forward", 128, 32, 16) == "im2col"  # 16 filters: bands (``banded``)
    assert choice("input_gradient", 64, 16, 32) != "rowstack"  # 16 filters for the gradient
    assert choice("input_gradient", 64, 32, 32, window=(2, 2), pads=((0, 1), (0, 1))) == (
        "rowstack"
    )
    assert choice("forward", 28, 64, 64, window=(5, 5)) == "rowstack"


@pytest.mark.parametrize("kind", ["forward", "input_gradient"])
def test_dispatch_runs_the_chosen_kernel(monkeypatch, kind):
    """``conv_kernels`` really calls ``rowstack`` where ``kernel_for`` says so."""
    if not conv_kernels.ROWSTACK:
        pytest.skip("MINIDL_ROWSTACK=0 in this run")
    name = {"forward": "conv2d_forward"}.get(kind, f"conv2d_{kind}")
    calls = []
    real = getattr(rowstack, name)

    def recorded(*args, **kwargs):
        calls.append(kind)
        return real(*args, **kwargs)

    monkeypatch.setattr(rowstack, name, recorded)
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal((1, 6, 6, 32)), rng.standard_normal((3, 3, 32, 32))
    grad = rng.standard_normal((1, 6, 6, 32))
    pads, scratch = ((1, 1), (1, 1)), im2col.Scratch()
    if kind == "forward":
        result = conv_kernels.conv2d_forward(x, kernel, (1, 1), pads, scratch)
        expected = R.forward(x, kernel, pads, grad.shape)
    else:
        result = conv_kernels.conv2d_input_gradient(grad, kernel, x.shape, (1, 1), pads, scratch)
        expected = R.input_gradient(grad, kernel, x.shape, pads)
    assert calls == [kind]
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


@settings(SETTINGS, max_examples=4)
@given(
    window=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    side=st.tuples(st.integers(4, 7), st.integers(4, 7)),
    channels=st.integers(16, 18),
    filters=st.integers(32, 34),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**16),
)
def test_backend_conv2d_matches_references(backend, window, side, channels, filters, padding, seed):
    """``K.conv2d`` and its gradients on each backend at sizes where numpy and theano run
    stacked rows (tensorflow runs its own kernels, against the same references)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *side, channels))
    kernel = rng.standard_normal((*window, channels, filters))
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    else:
        pads = tuple(naive.same_split(s, k, 1)[1:] for s, k in zip(side, window, strict=True))
    out_shape = (2, side[0] + sum(pads[0]) - window[0] + 1, side[1] + sum(pads[1]) - window[1] + 1)
    grad = rng.standard_normal((*out_shape, filters))

    results = R.backend_conv2d(x, kernel, grad, padding, "rowstack_conv")
    R.assert_matches(x, kernel, grad, pads, results)


@pytest.mark.parametrize("name", ["ROWSTACK", "WINOGRAD"])
def test_environment_switches_turn_a_kernel_off(name):
    code = f"from minidl.backends import conv_kernels; print(conv_kernels.{name})"
    env = {**os.environ, f"MINIDL_{name}": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
