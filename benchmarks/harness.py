"""Timing harness: rows are prepared (compile timed), warmed up, then timed in interleaved rounds.

A *row* is one implementation of a task (hand-written NumPy, minidl on a backend, raw PyTensor,
...). Every row of a task is measured in the same process, and the repeats are interleaved
(round ``r`` times every row once, in an order rotated by ``r``) so slow spells of a noisy
machine fall on all rows alike and the ratios between rows hold.
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.environment import import_quietly

logger = logging.getLogger("minidl.benchmarks")


class Skip(Exception):  # noqa: N818 - reads as "raise Skip(reason)"
    """Raised while preparing a row that cannot run here (package missing, unsupported dtype)."""


def import_or_skip(module: str, hint: str) -> Any:
    """Import ``module``, or raise ``Skip`` saying it is missing and how to get it."""
    try:
        return import_quietly(module)
    except ImportError as err:
        raise Skip(f"{module} is not available ({err}); {hint}") from None


@dataclass
class Prepared:
    """A compiled row: ``first()`` runs step one and returns its loss; ``block(n)`` runs n steps.

    ``block`` returns the last step's loss as a float (which also waits for asynchronous
    runtimes to finish the work before the clock stops).
    """

    first: Callable[[], float]
    block: Callable[[int], float]
    note: str = ""  # a setting worth reporting (compile mode, XLA, ...)
    # Reset the weights to their initial values and train on new data from now on, so one
    # compiled row serves several batch sizes (compiling once is what a user would do too).
    rebind: Callable[[Any], None] | None = None
    # Called before the clock starts for each block (minidl: make the model's backend current,
    # which a real program does once, not per step).
    activate: Callable[[], None] | None = None


@dataclass
class Row:
    """One implementation of a task, built lazily by ``prepare`` (which may raise ``Skip``)."""

    name: str
    kind: str  # "reference" | "minidl" | "raw" | "peer"
    framework: str  # "numpy", "theano", "tensorflow", "torch", "keras"
    prepare: Callable[[], Prepared]
    timed: str  # what one timed step is, e.g. "model.train_on_batch"
    device: str = "cpu"
    variant: str = ""  # compile setting or API that tells rows of one framework apart


@dataclass
class RowResult:
    """Numbers measured for one row of one task configuration."""

    name: str
    kind: str
    framework: str
    timed: str
    device: str
    variant: str = ""
    status: str = "ok"  # "ok" | "skipped" | "error"
    note: str = ""
    compile_s: float | None = None
    first_loss: float | None = None  # loss of step 1 (same weights and batch for every row)
    second_loss: float | None = None  # loss of step 2: checks gradients and update too
    step_s: list[float] = field(default_factory=list)  # one per repeat (block time / steps)
    items_per_step: int = 0

    def stats(self) -> dict[str, float] | None:
        """Median, min, max and interquartile range of the per-step times, and throughput."""
        if not self.step_s:
            return None
        times = sorted(self.step_s)
        median = statistics.median(times)
        if len(times) >= 4:
            q1, _, q3 = statistics.quantiles(times, n=4)
        else:
            q1, q3 = times[0], times[-1]
        return {
            "median_s": median,
            "min_s": times[0],
            "max_s": times[-1],
            "q1_s": q1,
            "q3_s": q3,
            "per_s": self.items_per_step / median,
            "per_s_best": self.items_per_step / times[0],
            "per_s_worst": self.items_per_step / times[-1],
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the raw times, their statistics and the row's description."""
        return {
            "name": self.name,
            "kind": self.kind,
            "framework": self.framework,
            "timed": self.timed,
            "device": self.device,
            "variant": self.variant,
            "status": self.status,
            "note": self.note,
            "compile_s": self.compile_s,
            "first_loss": self.first_loss,
            "second_loss": self.second_loss,
            "items_per_step": self.items_per_step,
            "step_s": self.step_s,
            "stats": self.stats(),
        }


@dataclass
class Schedule:
    """How hard to measure: steps per timed block, warm-up blocks and interleaved rounds."""

    steps_per_block: int
    repeats: int
    warmup_blocks: int = 1
    # Idle time before each timed block: BLAS/OpenMP pools of the previous row spin-wait for
    # up to ~0.1 s after their last call and would otherwise steal the cores from this row.
    pause_s: float = 0.0


def prepare_rows(
    rows: Sequence[Row], items_per_step: int
) -> tuple[list[RowResult], dict[str, Prepared]]:
    """Build and compile each row, then run its first two steps to record their losses.

    The compile time covers ``prepare`` and the first step (tracing happens there for most
    frameworks); the second step is not timed.
    """
    results, ready = [], {}
    for row in rows:
        result = RowResult(row.name, row.kind, row.framework, row.timed, row.device, row.variant)
        result.items_per_step = items_per_step
        results.append(result)
        gc.collect()
        start = time.perf_counter()
        try:
            prepared = row.prepare()
            loss = prepared.first()
            compile_s = time.perf_counter() - start
            second = prepared.block(1)
        except Skip as reason:
            result.status, result.note = "skipped", str(reason)
            logger.info("skip %s: %s", row.name, reason)
            continue
        except Exception as err:  # a broken row is reported, the others still run
            result.status = "error"
            result.note = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            logger.warning("row %s failed:\n%s", row.name, traceback.format_exc())
            continue
        result.compile_s = compile_s
        logger.info("prepared %s in %.1f s", row.name, compile_s)
        result.note = prepared.note
        result.first_loss, result.second_loss = float(loss), float(second)
        ready[row.name] = prepared
    return results, ready


def measure_rows(results: list[RowResult], ready: dict[str, Prepared], schedule: Schedule) -> None:
    """Warm up every ready row, then time ``schedule.repeats`` interleaved rounds."""
    names = [r.name for r in results if r.name in ready]
    by_name = {r.name: r for r in results}
    gc.collect()
    gc.freeze()  # long-lived objects (frameworks, models) leave the collector's scans
    try:
        for name in names:
            try:
                for _ in range(schedule.warmup_blocks):
                    _activate(ready[name])
                    ready[name].block(schedule.steps_per_block)
            except Exception as err:
                _fail(by_name[name], ready, err)
        for round_index in range(schedule.repeats):
            logger.info("round %d of %d", round_index + 1, schedule.repeats)
            live = [n for n in names if n in ready]
            shift = round_index % max(len(live), 1)
            for name in live[shift:] + live[:shift]:
                _time_block(by_name[name], ready, schedule)
    finally:
        gc.unfreeze()


def _time_block(result: RowResult, ready: dict[str, Prepared], schedule: Schedule) -> None:
    """Pause, make the row ready (untimed), then time one block with the collector off."""
    time.sleep(schedule.pause_s)
    prepared = ready[result.name]
    try:
        _activate(prepared)
        gc.disable()  # as timeit does: no collector pauses inside a timed block
        start = time.perf_counter()
        prepared.block(schedule.steps_per_block)
        elapsed = time.perf_counter() - start
    except Exception as err:
        _fail(result, ready, err)
        return
    finally:
        gc.enable()
    result.step_s.append(elapsed / schedule.steps_per_block)


def _activate(prepared: Prepared) -> None:
    if prepared.activate is not None:
        prepared.activate()


def _fail(result: RowResult, ready: dict[str, Prepared], err: Exception) -> None:
    result.status = "error"
    result.note = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    result.step_s.clear()
    ready.pop(result.name, None)
    logger.warning("row %s failed while timing:\n%s", result.name, traceback.format_exc())


class Feed:
    """Batches walked cyclically; ``replace`` swaps in new ones and starts again at batch 0."""

    def __init__(self, batches: Sequence[tuple[Any, Any]]) -> None:
        self.replace(batches)

    def replace(self, batches: Sequence[tuple[Any, Any]]) -> None:
        self.batches, self.position = list(batches), 0

    def next(self) -> tuple[Any, Any]:
        batch = self.batches[self.position % len(self.batches)]
        self.position += 1
        return batch


def cyclic_block(
    step: Callable[[Any, Any], Any],
    batches: Sequence[tuple[Any, Any]],
    to_float: Callable[[Any], float] = float,
    reset: Callable[[], None] | None = None,
    convert: Callable[[Any], Sequence[tuple[Any, Any]]] | None = None,
) -> Prepared:
    """Wrap ``step(x, y) -> loss`` into a ``Prepared`` that walks the batches cyclically.

    The last loss of each block is converted with ``to_float`` so that asynchronous runtimes
    have finished the block's work before the clock stops. With ``reset`` (restore the initial
    weights) and ``convert`` (dataset -> batches), the row can be rebound to new data.
    """
    feed = Feed(batches)

    def run(n: int) -> Any:
        loss = None
        for _ in range(n):
            x, y = feed.next()
            loss = step(x, y)
        return loss

    rebind = None
    if reset is not None and convert is not None:

        def rebind(data: Any) -> None:
            reset()
            feed.replace(convert(data))

    return Prepared(first=lambda: to_float(run(1)), block=lambda n: to_float(run(n)), rebind=rebind)


def rebind_rows(
    template: list[RowResult], ready: dict[str, Prepared], data: Any, items_per_step: int
) -> list[RowResult]:
    """Rebind every ready row to ``data``; fresh results with the new first two losses.

    Rows keep their compiled steps, so their compile time is not reported again.
    """
    results = []
    for old in template:
        result = RowResult(old.name, old.kind, old.framework, old.timed, old.device, old.variant)
        result.items_per_step = items_per_step
        result.status, result.note = old.status, old.note
        results.append(result)
        prepared = ready.get(old.name)
        if prepared is None:
            continue
        try:
            if prepared.rebind is None:
                raise TypeError(f"row {old.name!r} cannot be rebound to new data")
            prepared.rebind(data)
            _activate(prepared)
            result.first_loss = float(prepared.first())
            result.second_loss = float(prepared.block(1))
        except Exception as err:
            _fail(result, ready, err)
    return results
