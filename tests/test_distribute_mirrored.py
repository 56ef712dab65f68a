"""MirroredStrategy / MultiWorkerMirroredStrategy (tf.distribute) on two logical CPU devices.

TensorFlow fixes its devices when it starts, so the runs happen in a fresh process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minidl import backend as K
from minidl.distribute import MirroredStrategy
from tests.conftest import backend_skip_reason

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from minidl import initializers
    from minidl.distribute import (
        MirroredStrategy, MultiWorkerMirroredStrategy, logical_cpu_devices)
    from minidl.layers import Dense
    from minidl.models import Sequential

    if sys.argv[1] == "mirrored":
        devices = logical_cpu_devices(2)
        strategy = MirroredStrategy(devices)
    else:  # one of two workers named by TF_CONFIG, one CPU replica each
        devices = []
        strategy = MultiWorkerMirroredStrategy()

    def build():
        initializers.set_seed(0)
        model = Sequential([Dense(6, input_dim=4, activation="tanh"),
                            Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    rng = np.random.RandomState(0)
    x = rng.randn(31, 4).astype("float32")
    y = rng.randint(0, 3, 31)
    with strategy.scope():
        model = build()
    reference = build()
    runs = []
    for net in (model, reference):
        # global batches of 5 split 3/2 between the replicas; the last batch of 1 leaves the
        # second replica without a sample
        np.random.seed(1)
        runs.append([net.fit(x, y, batch_size=5, epochs=2, verbose=0).history])
    if sys.argv[1] != "mirrored":  # the chief's order reaches every worker; a validation split
        for net in (model, reference):
            np.random.seed(2)
            runs[net is reference].append(
                net.fit(x, y, batch_size=8, verbose=0, validation_split=0.25).history)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "steps": sorted({type(step).__name__ for step in model.steps._steps.values()}),
        "rank": strategy.rank,
        "devices": devices,
        "weight_diff": max(float(np.max(np.abs(a - b)))
                           for a, b in zip(model.get_weights(), reference.get_weights())),
        "moved": max(float(np.max(np.abs(a - b)))
                     for a, b in zip(model.get_weights(), build().get_weights())),
        "history": runs[0], "reference": runs[1],
    }))
    """
)


needs_tf = pytest.mark.skipif(
    backend_skip_reason("tensorflow") is not None, reason="tensorflow backend not installed"
)


def check_report(report: dict) -> None:
    assert report["replicas"] == 2
    assert "ReplicatedStep" in report["steps"]  # the train step really ran on every replica
    assert report["moved"] > 1e-3  # training changed the weights
    assert report["weight_diff"] < 1e-5  # equal to one device on the same global batches
    for got, want in zip(report["history"], report["reference"]):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)


def reports(procs: list[subprocess.Popen]) -> list[dict]:
    found = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        assert proc.returncode == 0 and lines, stdout + stderr
        found.append(json.loads(lines[-1]))
    return found


def start(script, kind: str, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "MINIDL_BACKEND": "tensorflow", **env}
    if "TF_CONFIG" not in env:
        full_env.pop("TF_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, str(script), kind],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@needs_tf
def test_mirrored_replicas_on_two_logical_cpus_train_like_one_device(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    (report,) = reports([start(script, "mirrored")])
    assert len(report["devices"]) == 2
    check_report(report)


@needs_tf
@pytest.mark.slow
def test_two_multi_worker_processes_train_like_one_device(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("localhost", 0))
            ports.append(probe.getsockname()[1])
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    procs = [
        start(
            script,
            "multi_worker",
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    ]
    found = reports(procs)
    assert sorted(r["rank"] for r in found) == [0, 1]
    for report in found:
        check_report(report)


def test_mirrored_strategy_needs_the_tensorflow_backend():
    if K.name() == "tensorflow":
        pytest.skip("the default backend is tensorflow")
    with pytest.raises(ValueError, match="needs the tensorflow backend.*use MPIStrategy"):
        MirroredStrategy()
