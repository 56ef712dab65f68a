"""Fig. 7 rows: each element-wise expression compiled once per implementation, timed per size."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import minidl_rows, peers, raw_pytensor, raw_tensorflow
from benchmarks.harness import (
    Prepared,
    Row,
    RowResult,
    Schedule,
    Skip,
    import_or_skip,
    measure_rows,
)
from benchmarks.suites import Options, TaskResult, bind, minidl_variant
from benchmarks.tasks import ELEMWISE

logger = logging.getLogger("minidl.benchmarks")


def elemwise_factories(expression: str, opts: Options) -> list[tuple[Row, Callable[[], Any]]]:
    """(row, factory) pairs; a factory compiles and returns ``fn(a, b) -> ndarray`` (+ note)."""
    dtype = opts.dtype
    compute = ELEMWISE[expression]
    pairs = [(Row("NumPy", "reference", "numpy", None, "expression"), lambda: (compute, ""))]
    if opts.peers:
        pairs.append(
            (
                Row("numexpr", "peer", "numexpr", None, "numexpr.evaluate"),
                lambda: _numexpr(expression),
            )
        )
    for backend in opts.backends:
        pairs.append(
            (
                Row(
                    f"minidl {backend}",
                    "minidl",
                    backend,
                    None,
                    "K.function",
                    "cpu",
                    minidl_variant(backend),
                ),
                bind(minidl_rows.elemwise_function, backend, expression, dtype),
            )
        )
    if "theano" in opts.backends:
        ours, mode = raw_pytensor.matched_modes()
        factory = lambda: (raw_pytensor.elemwise_function(expression, dtype, mode), "")
        pairs.append(
            (
                Row(
                    f"PyTensor raw ({ours})",
                    "raw",
                    "theano",
                    None,
                    "pytensor.function",
                    "cpu",
                    ours,
                ),
                factory,
            )
        )
    if "tensorflow" in opts.backends:
        factory = lambda: (raw_tensorflow.elemwise_function(expression, dtype, False), "")
        pairs.append((Row("TF raw", "raw", "tensorflow", None, "tf.function"), factory))
    if opts.peers:
        pairs.append(
            (
                Row("PyTorch eager", "peer", "torch", None, "eager ops"),
                lambda: (peers.torch_elemwise_function(expression), ""),
            )
        )
    return pairs


def _numexpr(expression: str) -> tuple[Callable, str]:
    numexpr = import_or_skip(
        "numexpr", "optional peer, as in the paper's Fig. 7: pip install numexpr"
    )

    return (lambda a, b: numexpr.evaluate(expression, local_dict={"a": a, "b": b})), ""


def run_elemwise(opts: Options, expression: str) -> list[TaskResult]:
    """Fig. 7: one expression at every size; each row compiled once (compile time kept)."""
    plan, dtype = opts.plan, opts.dtype
    rng = np.random.default_rng(3)
    compiled: dict[str, tuple[Callable, float, str]] = {}
    failures: dict[str, tuple[str, str]] = {}
    pairs = elemwise_factories(expression, opts)
    probe = rng.random(16).astype(dtype), rng.random(16).astype(dtype)
    for row, factory in pairs:
        start = time.perf_counter()
        try:
            fn, note = factory()
            fn(*probe)
            compiled[row.name] = (fn, time.perf_counter() - start, note)
        except Skip as reason:
            failures[row.name] = ("skipped", str(reason))
        except Exception as err:  # reported in the row, the others still run
            failures[row.name] = ("error", f"{type(err).__name__}: {err}".splitlines()[0][:300])
            logger.warning("elemwise row %s failed: %s", row.name, err)
    out = []
    for size in plan.elemwise_sizes:
        a, b = rng.random(size).astype(dtype), rng.random(size).astype(dtype)
        results, ready = [], {}
        for row, _ in pairs:
            result = RowResult(
                row.name,
                row.kind,
                row.framework,
                row.timed,
                row.device,
                row.variant,
                items_per_step=size,
            )
            results.append(result)
            if row.name in failures:
                result.status, result.note = failures[row.name]
                continue
            fn, result.compile_s, result.note = compiled[row.name]
            ready[row.name] = _elemwise_prepared(fn, a, b)
            result.first_loss = ready[row.name].first()
        calls = max(1, min(plan.elemwise_budget // size, plan.elemwise_max_calls))
        schedule = Schedule(steps_per_block=calls, repeats=plan.elemwise_repeats)
        start = time.perf_counter()
        measure_rows(results, ready, schedule)
        config = {"figure": "Fig. 7", "expression": expression, "size": size, "dtype": dtype}
        out.append(
            TaskResult(
                f"elemwise {expression} n={size:g}",
                config,
                {
                    "steps_per_block": calls,
                    "repeats": schedule.repeats,
                    "warmup_blocks": schedule.warmup_blocks,
                },
                results,
                time.perf_counter() - start,
            )
        )
    return out


def _elemwise_prepared(fn: Callable, a: np.ndarray, b: np.ndarray) -> Prepared:
    def block(n: int) -> float:
        out = None
        for _ in range(n):
            out = fn(a, b)
        return float(np.asarray(out)[-1])

    return Prepared(
        first=lambda: float(np.mean(np.asarray(fn(a, b)), dtype=np.float64)), block=block
    )
