"""Smoke test of ``python -m benchmarks.conv_layers`` at a tiny size."""

from __future__ import annotations

import sys
import unittest.mock
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import conv_layers  # noqa: E402
from minidl.backends import conv_kernels, rowstack, winograd  # noqa: E402


def test_each_forced_kernel_really_runs_and_the_flags_come_back(monkeypatch):
    """A row labelled Winograd or stacked rows must time that kernel, and nothing of the
    forcing may outlive the row."""
    before = dict(vars(conv_kernels))
    calls = []
    for module, names in ((rowstack, ("conv2d_forward",)), (winograd, ("conv2d_forward",))):
        for name in names:
            real = getattr(module, name)

            def recorded(*args, _real=real, _module=module.__name__, **kwargs):
                calls.append(_module.rsplit(".", 1)[1])
                return _real(*args, **kwargs)

            monkeypatch.setattr(module, name, recorded)
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal((1, 6, 6, 4)), rng.standard_normal((3, 3, 4, 32))
    for name in ("winograd", "rowstack", "im2col"):
        calls.clear()
        with conv_layers.forced(name):
            conv_kernels.conv2d_forward(x, kernel, (1, 1), ((1, 1), (1, 1)), conv_kernels.SCRATCH)
        assert calls == ([] if name == "im2col" else [name])
    assert {k: v for k, v in vars(conv_kernels).items() if k.isupper()} == {
        k: v for k, v in before.items() if k.isupper()
    }


def test_report_has_every_kind_and_kernel():
    entries = conv_layers.measure(batch=1, rounds=1, layers=[("U-Net", 8, 32, 32)])
    assert [e["kind"] for e in entries] == list(conv_layers.KINDS)
    for entry in entries:
        expected = set(conv_layers.KERNELS) - (
            {"rowstack"} if entry["kind"] == "kernel_gradient" else set()
        )
        assert set(entry["ms"]) == expected
        assert all(ms > 0 for ms in entry["ms"].values())
        assert entry["default"] in ("im2col", "winograd", "rowstack")
    text = conv_layers.markdown(entries, 1, 1)
    assert text.count("| U-Net 8x8x32->32 |") == 3


def test_tensorflow_rows_time_the_same_calls_as_ours():
    """The TensorFlow column must time TensorFlow doing our call (same padding, kernel layout
    and gradients), not some other convolution: each of its ops gives our numbers."""
    pytest.importorskip("tensorflow")
    arrays = conv_layers._arrays(2, 6, 3, 5)
    ours, theirs = conv_layers._calls(arrays), conv_layers._tensorflow_calls(arrays)
    for kind in conv_layers.KINDS:
        expected = np.asarray(ours[kind]())
        np.testing.assert_allclose(np.asarray(theirs[kind]()), expected, rtol=1e-4, atol=1e-5)


def test_report_has_a_tensorflow_column_when_asked():
    pytest.importorskip("tensorflow")
    entries = conv_layers.measure(1, 1, layers=[("U-Net", 8, 32, 32)], tensorflow=True)
    assert all(entry["ms"]["tensorflow"] > 0 for entry in entries)
    lines = conv_layers.markdown(entries, 1, 1).splitlines()
    assert lines[2].endswith(" TensorFlow |")
    assert all(line.count("|") == 8 for line in lines[2:])
    plain = conv_layers.markdown(conv_layers.measure(1, 1, layers=[("U-Net", 8, 32, 32)]), 1, 1)
    assert "TensorFlow" not in plain


def test_blas_floor_times_the_layer_products():
    """The floor must time the layer's own multiply-adds: a floor that times a smaller product
    (wrong pixel count or channels) would claim a ceiling that is not there."""
    calls = []
    real = np.matmul

    def recorded(a, b, out=None):
        calls.append((a.shape, b.shape))
        return real(a, b, out=out)

    with unittest.mock.patch.object(conv_layers.np, "matmul", recorded):
        ms = conv_layers.blas_floor(2, 5, 3, 4, rounds=1)
    assert ms > 0
    assert set(calls) == {((50, 27), (27, 4)), ((16, 18, 3), (16, 3, 4))}
    entries = conv_layers.measure(1, 1, layers=[("U-Net", 8, 32, 32)], floor=True)
    floors = {entry["ms"]["floor"] for entry in entries}
    assert len(floors) == 1 and floors.pop() > 0
    assert conv_layers.markdown(entries, 1, 1).splitlines()[2].endswith(" BLAS floor ms |")
