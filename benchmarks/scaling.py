"""Scaling of data-parallel training: 2 MPI processes against 1 on this machine.

``python -m benchmarks.scaling`` trains two models with ``model.fit`` on the same global
batches in four settings, each in fresh processes, and reports examples per second:

* ``1 proc, 1 thread``: plain ``fit`` in one process with one BLAS/NumPy thread (the
  baseline the efficiency is measured against);
* ``1 proc, 2 threads``: plain ``fit`` with two threads (what one process gets from 2 cores);
* ``MPI 1 proc``: ``MPIStrategy`` under ``mpiexec -n 1`` (the strategy's own overhead);
* ``MPI 2 procs``: ``MPIStrategy`` under ``mpiexec -n 2``, one thread per process.

Scaling efficiency = examples/s of ``MPI 2 procs`` / (2 x examples/s of ``1 proc, 1 thread``).
Models: the Theano paper's Fig. 5 MLP (784 -> 500 tanh -> 10 softmax, SGD 0.01, global batch
60) and a small CNN (28x28x1 -> conv 8@5x5 tanh -> max-pool 2 -> conv 16@5x5 tanh -> max-pool 2
-> dense 10 softmax, global batch 64). Compile time (first ``fit`` of one batch) and peak
resident memory per process are reported beside speed. Rounds alternate the settings; the
median over rounds is shown.

    python -m benchmarks.scaling                      # numpy backend, 3 rounds
    python -m benchmarks.scaling --backend theano --rounds 5 --json results/scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

MODELS = {
    "mlp": {"batch": 60, "samples": 6000, "input": (784,)},
    "cnn": {"batch": 64, "samples": 1280, "input": (28, 28, 1)},
}
SETTINGS = {
    "1 proc, 1 thread": {"launch": "python", "threads": 1},
    "1 proc, 2 threads": {"launch": "python", "threads": 2},
    "MPI 1 proc": {"launch": "mpi", "procs": 1, "threads": 1},
    "MPI 2 procs": {"launch": "mpi", "procs": 2, "threads": 1},
}


def build(name: str) -> Any:
    """The benchmark model ``name``, compiled with SGD(0.01) and categorical cross-entropy."""
    from minidl import initializers
    from minidl.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from minidl.models import Sequential
    from minidl.optimizers import SGD

    initializers.set_seed(0)
    if name == "mlp":
        layers = [Dense(500, activation="tanh", input_shape=(784,)), Dense(10)]
    else:
        layers = [
            Conv2D(8, 5, activation="tanh", input_shape=(28, 28, 1)),
            MaxPooling2D(2),
            Conv2D(16, 5, activation="tanh"),
            MaxPooling2D(2),
            Flatten(),
            Dense(10),
        ]
    model = Sequential([*layers[:-1], Dense(10, activation="softmax")])
    model.compile(SGD(0.01), "categorical_crossentropy")
    return model


def worker(name: str, epochs: int, use_mpi: bool) -> dict[str, Any] | None:
    """Train ``name`` and return the chief's measurements (None on other ranks)."""
    spec = MODELS[name]
    rng = np.random.RandomState(0)
    x = rng.rand(spec["samples"], *spec["input"]).astype("float32")
    y = np.eye(10, dtype="float32")[rng.randint(0, 10, spec["samples"])]
    rank, size = 0, 1
    start = time.perf_counter()
    if use_mpi:
        from minidl.distribute import MPIStrategy

        strategy = MPIStrategy()
        rank, size = strategy.rank, strategy.size
        with strategy.scope():
            model = build(name)
    else:
        model = build(name)
    model.fit(x[: spec["batch"]], y[: spec["batch"]], batch_size=spec["batch"], verbose=0)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=spec["batch"], epochs=epochs, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    if rank != 0:
        return None
    return {
        "examples_per_second": spec["samples"] * epochs / seconds,
        "compile_seconds": compile_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "final_loss": history.history["loss"][-1],
        "processes": size,
    }


def run_setting(setting: dict[str, Any], name: str, epochs: int, backend: str) -> dict:
    """Run one setting in fresh processes and return the chief's JSON line."""
    threads = str(setting["threads"])
    env = dict(os.environ, MINIDL_BACKEND=backend, MINIDL_NUMPY_THREADS=threads)
    env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    command = [
        sys.executable,
        "-m",
        "benchmarks.scaling",
        "--worker",
        name,
        "--epochs",
        str(epochs),
    ]
    if setting["launch"] == "mpi":
        command = ["mpiexec", "-n", str(setting["procs"]), *command, "--mpi"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mpi", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.epochs, args.mpi)
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    report: dict[str, Any] = {
        "backend": args.backend,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "models": {},
    }
    for name in args.models.split(","):
        runs: dict[str, list[dict]] = {label: [] for label in SETTINGS}
        for round_index in range(args.rounds):
            labels = list(SETTINGS)
            labels = labels[round_index % len(labels) :] + labels[: round_index % len(labels)]
            for label in labels:
                runs[label].append(run_setting(SETTINGS[label], name, args.epochs, args.backend))
        rows = {}
        for label, results in runs.items():
            rows[label] = {
                "examples_per_second": statistics.median(r["examples_per_second"] for r in results),
                "range": [
                    min(r["examples_per_second"] for r in results),
                    max(r["examples_per_second"] for r in results),
                ],
                "compile_seconds": statistics.median(r["compile_seconds"] for r in results),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
                "final_loss": results[-1]["final_loss"],
            }
        base = rows["1 proc, 1 thread"]["examples_per_second"]
        two = rows["MPI 2 procs"]["examples_per_second"]
        report["models"][name] = {
            "rows": rows,
            "efficiency_vs_1_thread": two / (2 * base),
            "speedup_vs_1_thread": two / base,
            "speedup_vs_2_threads": two / rows["1 proc, 2 threads"]["examples_per_second"],
        }
        print(f"\n{name} ({args.backend}, {args.rounds} rounds x {args.epochs} epochs)")
        print(f"{'setting':<20} {'examples/s':>11} {'range':>19} {'compile s':>9} {'peak MB':>8}")
        for label, row in rows.items():
            low, high = row["range"]
            print(
                f"{label:<20} {row['examples_per_second']:>11.0f} {low:>9.0f}..{high:<9.0f}"
                f"{row['compile_seconds']:>9.2f} {row['peak_rss_mb']:>8.0f}"
            )
        summary = report["models"][name]
        print(
            f"scaling efficiency (2 procs vs 2 x 1 proc/1 thread): "
            f"{summary['efficiency_vs_1_thread']:.2f}; speed-up vs 1 proc/2 threads: "
            f"{summary['speedup_vs_2_threads']:.2f}"
        )
    report["load_average_at_end"] = os.getloadavg()[0]
    print(
        f"load average: {report['load_average_at_start']:.1f} at start, "
        f"{report['load_average_at_end']:.1f} at the end ({os.cpu_count()} CPUs)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
