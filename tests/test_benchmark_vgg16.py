"""Smoke test of the VGG16 benchmark: the whole path at a tiny size, and its target checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import vgg16  # noqa: E402


@pytest.mark.slow  # ~20 s: builds VGG16 twice (timing, then a child process for memory)
def test_tiny_run_times_the_rows_and_weighs_them_in_a_child_process(tmp_path):
    argv = ["--quick", "--only", "predict:1x32", "--backends", "numpy", "--no-peers"]
    assert vgg16.main([*argv, "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "vgg16.json").read_text())
    (row,) = payload["results"][0]["rows"]
    assert row["name"] == "minidl numpy" and row["status"] == "ok", row["note"]
    assert len(row["step_s"]) == 3 and row["compile_s"] > 0
    memory = row["memory"]
    assert memory["peak_mb"] > memory["added_mb"] > 0  # VGG16's 58 MB of weights at least
    assert row["vs_keras"] is None  # no Keras row to compare with
    assert "| minidl numpy |" in (tmp_path / "vgg16.md").read_text()


def test_targets_are_judged_on_the_ratio_to_keras():
    report = [
        {
            "config": "train:8x112",
            "rows": [
                {"name": "minidl numpy", "framework": "numpy", "vs_keras": 0.79},
                {"name": "minidl theano", "framework": "theano", "vs_keras": 0.81},
                {"name": "Keras 3 (TensorFlow)", "framework": "keras", "vs_keras": 1.0},
            ],
        },
        {
            "config": "predict:8x112",
            "rows": [
                {"name": "minidl numpy", "framework": "numpy", "vs_keras": 1.0},
                {"name": "minidl theano", "framework": "theano", "vs_keras": 0.1},
            ],
        },
    ]
    verdicts = [(c["config"], c["row"], c["pass"]) for c in vgg16.check_targets(report)]
    assert verdicts == [
        ("train:8x112", "minidl numpy", False),
        ("train:8x112", "minidl theano", True),
        ("predict:8x112", "minidl numpy", True),
    ]
