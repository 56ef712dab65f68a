"""MPIStrategy under ``mpiexec -n 2`` on every backend: equal to one process, bad worlds fail fast.

Every MPI run happens in fresh processes (``mpiexec`` starts them); the worker script is
written to a temporary folder and reports JSON on stdout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.distribute import consistency
from minidl.distribute.sharding import GlobalBatchShards, shard_bounds, split_sizes
from tests.conftest import backend_skip_reason

MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason="mpi4py and mpiexec not installed (pip install 'minidl[distributed]')",
)

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from minidl import initializers
    from minidl.callbacks import CSVLogger, ModelCheckpoint
    from minidl.distribute import MPIStrategy
    from minidl.distribute.sharding import shard_bounds
    from minidl.layers import Dense
    from minidl.models import Sequential

    out = sys.argv[1]
    strategy = MPIStrategy(timeout=float(os.environ.get("TIMEOUT", "60")))
    rank = strategy.rank
    sys.stdout = open(os.path.join(out, f"stdout{rank}.txt"), "w")

    def build(seed, units=5):
        initializers.set_seed(seed)
        model = Sequential([Dense(units, input_dim=4, activation="tanh"),
                            Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    rng = np.random.RandomState(0)
    x = rng.randn(33, 4).astype("float32")
    y = rng.randint(0, 3, 33)
    weights = rng.rand(33).astype("float32") + 0.5
    mode = os.environ.get("MODE", "train")
    with strategy.scope():
        model = build(seed=rank, units=5 + (rank if mode in ("shape", "step") else 0))
    if mode == "step":  # no fit: the step's own check must stop a mismatched world
        model.train_on_batch(x[:4], y[:4])
    callbacks = [
        ModelCheckpoint(os.path.join(out, f"ckpt{rank}.h5")),
        CSVLogger(os.path.join(out, f"log{rank}.csv")),
    ]
    if mode in ("hang", "kill"):
        import signal, time
        from minidl.callbacks import LambdaCallback

        def trouble(batch, logs):
            if rank == 1 and batch == 2:
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(600)

        callbacks.append(LambdaCallback(on_batch_begin=trouble))
    # 33 samples: global batches of 7 split 4/3 with a last batch of 5 (3/2); batches of 8
    # leave a last batch of 1, so worker 1 holds no sample in that step
    np.random.seed(1)
    first = model.fit(x, y, batch_size=7, epochs=2, shuffle=True, verbose=1,
                      sample_weight=weights, callbacks=callbacks)
    np.random.seed(2)
    second = model.fit(x, y, batch_size=8, epochs=1, validation_split=0.25, verbose=1)

    class Batches:  # a Sequence: each worker yields its own part of the global batches of 11
        def __init__(self, rank, size):
            start, stop = shard_bounds(11, rank, size)
            self.parts = [np.arange(i * 11, i * 11 + 11)[start:stop] for i in range(3)]

        def __len__(self):
            return len(self.parts)

        def __getitem__(self, index):
            return x[self.parts[index]], y[self.parts[index]]

    third = model.fit(Batches(rank, strategy.size), epochs=2, shuffle=False, verbose=0)
    mine = model.get_weights()
    gathered = strategy.collectives.allgather_json([w.tolist() for w in mine])
    if rank == 0:
        reference = build(seed=0)
        np.random.seed(1)
        ref_first = reference.fit(x, y, batch_size=7, epochs=2, shuffle=True, verbose=0,
                                  sample_weight=weights)
        np.random.seed(2)
        ref_second = reference.fit(x, y, batch_size=8, epochs=1, validation_split=0.25,
                                   verbose=0)
        ref_third = reference.fit(Batches(0, 1), epochs=2, shuffle=False, verbose=0)
        report = {
            "size": strategy.size,
            "weight_diff": max(float(np.max(np.abs(a - b)))
                               for a, b in zip(mine, reference.get_weights())),
            "rank_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                             for a, b in zip(*gathered)),
            "moved": max(float(np.max(np.abs(a - b)))
                         for a, b in zip(mine, build(seed=0).get_weights())),
            "history": [first.history, second.history, third.history],
            "reference": [ref_first.history, ref_second.history, ref_third.history],
        }
        print(json.dumps(report), file=sys.__stdout__, flush=True)
    """
)


def run_world(tmp_path: Path, env: dict[str, str], ranks: list[dict[str, str]], limit: float):
    """Run the worker under mpiexec (one env per rank, MPMD syntax); return (proc, seconds)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    command: list[str] = [MPIEXEC]
    for index, extra in enumerate(ranks):
        if index:
            command.append(":")
        pairs = [f"{k}={v}" for k, v in extra.items()]
        command += ["-n", "1", "env", *pairs, sys.executable, str(script), str(tmp_path)]
    full_env = {**os.environ, "MINIDL_THEANO_MODE": "PY", **env}
    start = time.monotonic()
    proc = subprocess.run(
        command, env=full_env, capture_output=True, text=True, timeout=limit, cwd=tmp_path
    )
    return proc, time.monotonic() - start


def report_of(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    return json.loads(lines[-1])


@needs_mpi
@pytest.mark.parametrize(
    "backend_name",
    # two TensorFlow processes take about 15 s of CPU: the default run trains tensorflow
    # under tf.distribute instead (test_distribute_mirrored.py)
    ["numpy", "theano", pytest.param("tensorflow", marks=pytest.mark.slow)],
)
def test_two_workers_train_like_one_process(tmp_path, backend_name):
    reason = backend_skip_reason(backend_name)
    if reason:
        pytest.skip(reason)
    proc, _ = run_world(tmp_path, {"MINIDL_BACKEND": backend_name}, [{}, {}], limit=300)
    report = report_of(proc)
    assert report["size"] == 2
    assert report["moved"] > 1e-3  # training changed the weights: the comparison means something
    assert report["weight_diff"] < 1e-5  # rank 0 == one process on the same global batches
    assert report["rank_diff"] == 0.0  # every worker applied the same updates
    for got, want in zip(report["history"], report["reference"]):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
    # only the chief shows progress and writes checkpoints and logs
    assert "Epoch 1/2" in (tmp_path / "stdout0.txt").read_text()
    assert (tmp_path / "stdout1.txt").read_text() == ""
    assert (tmp_path / "ckpt0.h5").exists() and (tmp_path / "log0.csv").exists()
    assert not (tmp_path / "ckpt1.h5").exists() and not (tmp_path / "log1.csv").exists()


@needs_mpi
@pytest.mark.parametrize("mode", ["shape", "step"])
def test_workers_with_different_models_stop_with_one_error_on_every_rank(tmp_path, mode):
    proc, seconds = run_world(tmp_path, {"MODE": mode}, [{}, {}], limit=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "must run the same minidl" in line]
    assert len(errors) >= 2, proc.stderr  # raised by both workers, not by one
    assert "weight shapes" in errors[0] or "gradient shapes" in errors[0]
    assert "worker 0: [[4, 5]" in errors[0] and "worker 1: [[4, 6]" in errors[0]


@needs_mpi
def test_workers_on_different_backends_stop_on_every_rank(tmp_path):
    if backend_skip_reason("theano"):
        pytest.skip("theano backend not installed")
    ranks = [{"MINIDL_BACKEND": "numpy"}, {"MINIDL_BACKEND": "theano"}]
    proc, _ = run_world(tmp_path, {}, ranks, limit=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "must run the same minidl" in line]
    assert len(errors) >= 2 and "backend (worker 0: 'numpy', worker 1: 'theano')" in errors[0]


@needs_mpi
def test_a_killed_worker_ends_the_job(tmp_path):
    proc, seconds = run_world(tmp_path, {"MODE": "kill", "TIMEOUT": "20"}, [{}, {}], limit=120)
    assert proc.returncode != 0
    assert seconds < 20 + 15  # mpiexec ends the world; the timeout bounds it in any case


@needs_mpi
def test_a_hung_worker_makes_the_others_fail_after_the_timeout(tmp_path):
    # 5 s, not less: on a loaded machine a slow first step must not look like a hang. Either
    # rank may time out first there (worker 0 waits on the hung worker 1 when all is quiet).
    proc, seconds = run_world(tmp_path, {"MODE": "hang", "TIMEOUT": "5"}, [{}, {}], limit=120)
    assert proc.returncode != 0
    assert re.search(r"WorkerTimeoutError: Worker [01] of 2 waited 5 s", proc.stderr), proc.stderr
    assert seconds < 60  # not the 600 s the hung worker sleeps


# ----------------------------------------------------------------- without MPI


@settings(max_examples=50, deadline=None)
@given(total=st.integers(0, 500), parts=st.integers(1, 9))
def test_split_sizes_cover_the_batch_and_differ_by_at_most_one(total, parts):
    sizes = split_sizes(total, parts)
    assert sizes.sum() == total and sizes.max() - sizes.min() <= 1
    bounds = [shard_bounds(total, rank, parts) for rank in range(parts)]
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


@settings(max_examples=30, deadline=None)
@given(samples=st.integers(1, 60), batch=st.integers(1, 20), size=st.integers(1, 4))
def test_shards_of_all_workers_are_exactly_the_global_batches(samples, batch, size):
    x = np.arange(samples, dtype="float32")[:, None]
    order = np.random.RandomState(samples).permutation(samples)
    shards = [
        GlobalBatchShards(x, x[:, 0], None, batch, rank, size, lambda: order)
        for rank in range(size)
    ]
    assert all(len(s) == -(-samples // batch) for s in shards)
    for index in range(len(shards[0])):
        real = []
        for shard in shards:
            xb, yb, wb = shard[index]
            wb = np.ones(len(xb)) if wb is None else wb  # None: the engine's unit weights
            assert len(xb) == len(yb) == len(wb) >= 1  # a worker never gets an empty batch
            real += list(xb[wb > 0, 0]) if shard.local_count(index) else []
            assert (wb > 0).sum() == shard.local_count(index)
        start = index * batch
        assert real == list(x[order[start : start + batch], 0])


def test_mismatches_name_each_field_and_each_worker():
    same = {"backend": "numpy", "weight shapes": [[2, 3]]}
    other = {"backend": "theano", "weight shapes": [[2, 3]]}
    assert consistency.mismatches([same, dict(same)]) == []
    assert consistency.mismatches([same, other]) == [
        "backend (worker 0: 'numpy', worker 1: 'theano')"
    ]


def test_model_description_ignores_layer_names_but_not_structure():
    from minidl.layers import Dense
    from minidl.models import Sequential

    def build(units):
        model = Sequential([Dense(units, input_dim=3), Dense(1)])
        model.compile("sgd", "mse")
        return model

    first, second, wider = build(4), build(4), build(5)
    assert first.layers[0].name != second.layers[0].name
    assert consistency.model_description(first) == consistency.model_description(second)
    assert consistency.mismatches(
        [consistency.model_description(first), consistency.model_description(wider)]
    )
