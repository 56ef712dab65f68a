"""Smoke test of the Theano-paper benchmark: the entry point's whole path at tiny settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import environment, theano_paper  # noqa: E402


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One tiny run on the numpy backend only, without peers; returns (out_dir, json, stdout)."""
    out = tmp_path_factory.mktemp("bench")
    # --threads 0: leave the thread pools alone (a limit would outlive this test)
    argv = ["--smoke", "--backends", "numpy", "--no-peers", "--threads", "0", "--out", str(out)]
    assert theano_paper.main(argv) == 0
    return out, json.loads((out / "latest.json").read_text())


def test_json_has_every_task_with_measured_rows(smoke_run):
    _, payload = smoke_run
    tasks = {t["task"]: t for t in payload["tasks"]}
    assert {"mlp_b60", "conv_b1"} <= set(tasks)
    assert any(name.startswith("elemwise 2*a + b**10") for name in tasks)
    for name in ("mlp_b60", "conv_b1"):
        rows = {r["name"]: r for r in tasks[name]["rows"]}
        for row_name in ("NumPy hand-written", "minidl numpy"):
            row = rows[row_name]
            assert row["status"] == "ok", row["note"]
            assert row["stats"]["per_s"] > 0
            assert row["compile_s"] is not None and row["compile_s"] >= 0
            assert len(row["step_s"]) == tasks[name]["schedule"]["repeats"]
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["versions"]["numpy"]
    assert payload["threads"]["cpu_count"] >= 1


def test_every_row_computes_the_same_step(smoke_run):
    _, payload = smoke_run
    same = [t for t in payload["targets"] if t["target"].startswith("all rows compute the same")]
    assert {t["task"] for t in same} == {"mlp_b60", "conv_b1", "elemwise"}
    assert all(t["verdict"] == "PASS" for t in same), same


def test_targets_are_judged_and_markdown_written(smoke_run):
    out, payload = smoke_run
    targets = {(t["task"], t["target"]): t for t in payload["targets"]}
    overhead = targets[("mlp_b60", "minidl numpy >= 0.9x direct")]
    assert overhead["ratio"] > 0
    # the verdict follows from the measured ratio and the threshold, whatever the machine
    expected = "PASS" if overhead["ratio"] >= overhead["threshold"] else "FAIL"
    assert overhead["verdict"] == expected, overhead
    text = (out / "latest.md").read_text()
    assert "## Targets" in text and "NumPy hand-written" in text
    assert "paper, 2010" in text or "2010 hardware" in text
    # the markdown row of that target carries the same verdict as the JSON
    rows = [line for line in text.splitlines() if "| mlp_b60 | minidl numpy >= 0.9x" in line]
    assert len(rows) == 1 and f"**{expected}**" in rows[0], rows
    for check in payload["targets"]:
        assert check["verdict"] in ("PASS", "FAIL", "n/a"), check


def test_charts_are_written_when_matplotlib_is_installed(smoke_run):
    pytest.importorskip("matplotlib")
    out, payload = smoke_run
    assert payload["charts"], "matplotlib is installed, so the run must write charts"
    for chart in payload["charts"]:
        assert (out / chart).stat().st_size > 1000


def test_gpu_request_without_gpu_reports_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(environment, "gpu_inventory", lambda: {})
    argv = ["--device", "gpu", "--smoke", "--threads", "0", "--out", str(tmp_path)]
    assert theano_paper.main(argv) == 0
    assert "no GPU found" in capsys.readouterr().out
    assert not (tmp_path / "latest.json").exists()


def test_bad_arguments_are_rejected():
    with pytest.raises(SystemExit):
        theano_paper.parse_args(["--only", "lstm"])
    with pytest.raises(SystemExit):
        theano_paper.parse_args(["--backends", "numpy,cntk"])
