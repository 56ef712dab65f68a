"""Cost of the issue-10 spatial ops, as ratios against a plain convolution in the same process.

Each row times one compiled training-style step (forward, ``K.gradients`` of a sum of squares,
no update) on every installed backend and divides by its baseline row, run in the same process,
round-robin, with the same input sizes:

* ``conv2d_transpose`` 3x3/2 "same" ``(b, 32, 32, 32) -> (b, 64, 64, 16)`` against
  ``conv2d`` 3x3/2 "same" ``(b, 64, 64, 16) -> (b, 32, 32, 32)``, its adjoint (the same
  multiply-adds).
* ``conv2d`` 3x3 with ``dilation_rate=2`` against the undilated 3x3 conv, ``(b, 32, 32, 32)``.
* ``UpSampling2D`` x2 nearest and bilinear on ``(b, 32, 32, 32)`` against a 1x1 conv of the
  upsampled size (a cheap, memory-bound reference).

Reported per row: compile time (building the step plus its first call), the median step time
over the rounds, the ratio to the baseline, and the peak of NumPy allocations during one step
(``tracemalloc``; it sees NumPy's buffers on every backend that uses them, not TensorFlow's).

    python -m benchmarks.spatial_ops --backends numpy theano tensorflow --batch 8 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.layers import UpSampling2D


def _rows(batch: int) -> dict[str, tuple[str, tuple, Callable[..., Any]]]:
    """name -> (baseline name, input shape, op(x, kernel-free inputs...))."""
    rng = np.random.default_rng(0)

    def weights(shape: tuple) -> Any:
        return K.variable(rng.normal(0, 0.1, size=shape).astype("float32"))

    k_t, k_down = weights((3, 3, 16, 32)), weights((3, 3, 16, 32))
    k_d, k_1 = weights((3, 3, 32, 32)), weights((1, 1, 32, 32))
    up_nearest, up_bilinear = UpSampling2D(2), UpSampling2D(2, interpolation="bilinear")
    return {
        "conv2d 3x3/2 (baseline)": (
            "",
            (batch, 64, 64, 16),
            lambda x: K.conv2d(x, k_down, (2, 2), "same"),
        ),
        "conv2d_transpose 3x3/2": (
            "conv2d 3x3/2 (baseline)",
            (batch, 32, 32, 32),
            lambda x: K.conv2d_transpose(x, k_t, (None, 64, 64, 16), (2, 2), "same"),
        ),
        "conv2d 3x3 (baseline)": (
            "",
            (batch, 32, 32, 32),
            lambda x: K.conv2d(x, k_d, (1, 1), "same"),
        ),
        "conv2d 3x3 dilation 2": (
            "conv2d 3x3 (baseline)",
            (batch, 32, 32, 32),
            lambda x: K.conv2d(x, k_d, (1, 1), "same", (2, 2)),
        ),
        "conv2d 1x1 on 64x64 (baseline)": ("", (batch, 64, 64, 32), lambda x: K.conv2d(x, k_1)),
        "UpSampling2D x2 nearest": (
            "conv2d 1x1 on 64x64 (baseline)",
            (batch, 32, 32, 32),
            lambda x: up_nearest.call(x),
        ),
        "UpSampling2D x2 bilinear": (
            "conv2d 1x1 on 64x64 (baseline)",
            (batch, 32, 32, 32),
            lambda x: up_bilinear.call(x),
        ),
    }


def _compile(shape: tuple, op: Callable[..., Any]) -> Callable[..., list]:
    def step(x):
        loss = K.sum(K.square(op(x)))
        return [loss, *K.gradients(loss, [x])], []

    return K.function(step, [((None, *shape[1:]), "float32")], name="spatial_bench")


def run(backends: list[str], batch: int, rounds: int) -> list[dict[str, Any]]:
    """Measure every row on every backend; return one record per (backend, row)."""
    records = []
    for name in backends:
        K.set_backend(name)
        rows = _rows(batch)
        x_by_row, steps, compile_s = {}, {}, {}
        for row, (_, shape, op) in rows.items():
            x_by_row[row] = np.random.default_rng(1).normal(size=shape).astype("float32")
            start = time.perf_counter()
            steps[row] = _compile(shape, op)
            steps[row](x_by_row[row])
            compile_s[row] = time.perf_counter() - start
        times: dict[str, list[float]] = {row: [] for row in rows}
        for _ in range(rounds):
            for row in rows:
                start = time.perf_counter()
                steps[row](x_by_row[row])
                times[row].append(time.perf_counter() - start)
        for row, (baseline, _, _) in rows.items():
            tracemalloc.start()
            steps[row](x_by_row[row])
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            median = statistics.median(times[row])
            ratio = median / statistics.median(times[baseline]) if baseline else 1.0
            records.append(
                {
                    "backend": name,
                    "row": row,
                    "compile_s": compile_s[row],
                    "step_ms": median * 1e3,
                    "ratio": ratio,
                    "numpy_peak_mb": peak / 2**20,
                }
            )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["numpy", "theano", "tensorflow"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| backend | row | compile s | step ms (median) | ratio to baseline | NumPy peak MB |")
    print("|---|---|---|---|---|---|")
    for r in run(args.backends, args.batch, args.rounds):
        print(
            f"| {r['backend']} | {r['row']} | {r['compile_s']:.2f} | {r['step_ms']:.2f} | "
            f"{r['ratio']:.2f} | {r['numpy_peak_mb']:.1f} |"
        )


if __name__ == "__main__":
    main()
