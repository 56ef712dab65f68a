"""The U-Net benchmark: a tiny run end to end, and its rows computing the same thing as peers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import unet  # noqa: E402
from benchmarks.harness import Skip  # noqa: E402
from benchmarks.real_models import Config  # noqa: E402

RTOL = 1e-5  # float32 losses and mean probabilities of two frameworks on the same weights


def test_tiny_run_writes_the_rows_without_a_target_table(tmp_path):
    argv = ["--quick", "--only", "train:2x16", "--backends", "numpy", "--no-peers", "--no-memory"]
    assert unet.main([*argv, "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "unet.json").read_text())
    (row,) = payload["results"][0]["rows"]
    assert row["name"] == "minidl numpy" and row["status"] == "ok", row["note"]
    assert len(row["step_s"]) == 3 and row["compile_s"] > 0
    assert row["second_loss"] < row["first_loss"]  # one SGD step on the batch lowers its loss
    assert payload["targets"] == []
    text = (tmp_path / "unet.md").read_text()
    assert text.startswith("# U-Net benchmark") and "| minidl numpy |" in text
    assert "Targets" not in text


def test_weights_must_name_every_weighted_layer():
    from minidl.applications import UNet

    model = UNet((16, 16, 1), depth=unet.DEPTH, filters=unet.FILTERS)
    weights = unet.initial_weights()
    for name, arrays in weights.items():
        assert [w.shape for w in model.get_layer(name).get_weights()] == [a.shape for a in arrays]
    del weights["dec1_up"]
    with pytest.raises(ValueError, match=r"only in the model \['dec1_up'\]"):
        unet.assign_weights(model, weights)


def _values(prepare, kind: str) -> tuple[float, float]:
    prepared = prepare(Config(kind, 2, 16))
    return prepared.first(), prepared.block(1)


@pytest.mark.slow  # Keras traces its train step (~15 s); PyTorch imports in ~3 s
@pytest.mark.parametrize("peer", ["keras", "torch"])
@pytest.mark.parametrize("kind", ["train", "predict"])
def test_peer_rows_compute_what_minidl_computes(peer, kind):
    try:
        theirs = _values(getattr(unet, f"{peer}_row"), kind)
    except Skip as reason:
        pytest.skip(str(reason))
    ours = _values(lambda config: unet.minidl_row("numpy", config), kind)
    np.testing.assert_allclose(theirs, ours, rtol=RTOL)
    if kind == "train":  # step 2 ran on updated weights: gradients and SGD agree too
        assert ours[1] < ours[0]
    else:  # batch normalisation on its moving statistics in all three; not saturated
        assert ours[0] == ours[1] and 0.05 < ours[0] < 0.95


@pytest.mark.slow  # builds the U-Net twice (timing, then a child process for memory)
def test_tiny_run_weighs_each_row_in_a_child_process(tmp_path):
    argv = ["--quick", "--only", "predict:1x16", "--backends", "numpy", "--no-peers"]
    assert unet.main([*argv, "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "unet.json").read_text())["results"][0]["rows"]
    memory = row["memory"]
    assert memory["peak_mb"] > memory["added_mb"] > 0, memory
