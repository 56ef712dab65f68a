"""Assemble each task's rows (reference, minidl, raw backend, peers) and measure them together."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import minidl_rows, numpy_reference, peers, raw_pytensor, raw_tensorflow
from benchmarks.harness import (
    Prepared,
    Row,
    RowResult,
    Schedule,
    Skip,
    import_or_skip,
    measure_rows,
    prepare_rows,
    rebind_rows,
)
from benchmarks.tasks import (
    ELEMWISE,
    ConvTask,
    MLPTask,
    Plan,
    conv_data,
    conv_weights,
    mlp_data,
    mlp_weights,
)

logger = logging.getLogger("minidl.benchmarks")


@dataclass(frozen=True)
class Options:
    """What to run: minidl backends, devices, dtype, schedule, and which extra rows."""

    backends: tuple[str, ...]
    devices: tuple[str, ...]
    dtype: str
    plan: Plan
    peers: bool = True
    variants: bool = False  # also the other PyTensor mode and the XLA rows


def _with_env(prepare: Callable[[], Prepared], env: dict[str, str]) -> Callable[[], Prepared]:
    """A ``prepare`` that sets ``env`` while building and running step one (when steps compile)."""

    def wrapped() -> Prepared:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            prepared = prepare()
            loss = prepared.first()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return Prepared(
            first=lambda: loss,
            block=prepared.block,
            note=prepared.note,
            rebind=prepared.rebind,
            activate=prepared.activate,
        )

    return wrapped


def training_rows(name: str, task: Any, weights: list, data: Any, opts: Options) -> list[Row]:
    """Every row of the MLP (``name="mlp"``) or ConvLarge (``"conv"``) task."""
    is_mlp = name == "mlp"
    hand = numpy_reference.mlp_step if is_mlp else numpy_reference.conv_step
    model = minidl_rows.mlp_model if is_mlp else minidl_rows.conv_model
    pt_step = raw_pytensor.mlp_step if is_mlp else raw_pytensor.conv_step
    tf_step = raw_tensorflow.mlp_step if is_mlp else raw_tensorflow.conv_step
    torch_step = peers.torch_mlp_step if is_mlp else peers.torch_conv_step
    keras_step = peers.keras_mlp_step if is_mlp else peers.keras_conv_step
    rows: list[Row] = []
    for device in opts.devices:
        tag = "" if device == "cpu" else " [gpu]"
        if device == "cpu":
            rows.append(
                Row(
                    "NumPy hand-written",
                    "reference",
                    "numpy",
                    lambda: hand(task, weights, data),
                    "hand-written step",
                )
            )
        for backend in opts.backends:
            variant = _minidl_variant(backend)
            rows.append(
                Row(
                    f"minidl {backend}{tag}",
                    "minidl",
                    backend,
                    _minidl(backend, model, task, weights, data, False, device),
                    "model.train_on_batch",
                    device,
                    variant,
                )
            )
            if is_mlp and device == "cpu":
                rows.append(
                    Row(
                        f"minidl {backend} fit",
                        "minidl",
                        backend,
                        _minidl(backend, model, task, weights, data, True, device),
                        "model.fit (1 call per block)",
                        device,
                        "fit",
                    )
                )
            # PyTensor's NUMBA mode needs minutes to compile ConvLarge: mode variants on the MLP.
            if backend == "theano" and opts.variants and is_mlp and raw_pytensor.minidl_settings():
                other = raw_pytensor.other_mode(_minidl_variant(backend))[0]
                prepare = _minidl(backend, model, task, weights, data, False, device)
                rows.append(
                    Row(
                        f"minidl theano {other}{tag}",
                        "minidl",
                        backend,
                        _with_env(prepare, {"MINIDL_THEANO_MODE": other}),
                        "model.train_on_batch",
                        device,
                        other,
                    )
                )
            if backend == "tensorflow" and opts.variants:
                prepare = _minidl(backend, model, task, weights, data, False, device)
                rows.append(
                    Row(
                        f"minidl tensorflow XLA{tag}",
                        "minidl",
                        backend,
                        _with_env(prepare, {"MINIDL_TF_XLA": "1"}),
                        "model.train_on_batch",
                        device,
                        "xla",
                    )
                )
        if "theano" in opts.backends and device == "cpu":
            modes = [raw_pytensor.matched_modes()]
            if opts.variants and is_mlp:
                modes.append(raw_pytensor.other_mode(modes[0][0]))
            for ours, mode in modes:
                rows.append(
                    Row(
                        f"PyTensor raw ({ours})",
                        "raw",
                        "theano",
                        _bind(pt_step, task, weights, data, mode),
                        "pytensor.function",
                        device,
                        ours,
                    )
                )
        if "tensorflow" in opts.backends:
            for xla in (False, True) if opts.variants else (False,):
                rows.append(
                    Row(
                        f"TF raw{' XLA' if xla else ''}{tag}",
                        "raw",
                        "tensorflow",
                        _bind(tf_step, task, weights, data, xla, device),
                        "tf.function",
                        device,
                        "xla" if xla else "",
                    )
                )
        if opts.peers:
            rows.append(
                Row(
                    f"PyTorch eager{tag}",
                    "peer",
                    "torch",
                    _bind(torch_step, task, weights, data, device),
                    "optimizer.step (eager)",
                    device,
                )
            )
            if device == "cpu":
                for use_fit in (False, True):
                    api = "fit" if use_fit else "train_on_batch"
                    timed = "model.fit (1 call per block)" if use_fit else "model.train_on_batch"
                    rows.append(
                        Row(
                            f"Keras 3 {api}",
                            "peer",
                            "keras",
                            _bind(keras_step, task, weights, data, use_fit),
                            timed,
                            device,
                            api,
                        )
                    )
    return rows


def _bind(fn: Callable[..., Prepared], *args: Any) -> Callable[[], Prepared]:
    return lambda: fn(*args)


def _minidl(backend, model, task, weights, data, use_fit, device) -> Callable[[], Prepared]:
    return lambda: minidl_rows.training_row(backend, model, task, weights, data, use_fit, device)


def _minidl_variant(backend: str) -> str:
    """minidl's compile setting for ``backend`` as a variant key (matches the raw rows)."""
    if backend == "theano":
        return raw_pytensor.matched_modes()[0] if raw_pytensor.minidl_settings() else ""
    if backend == "tensorflow":
        on = os.environ.get("MINIDL_TF_XLA", "").strip().lower() in ("1", "true", "yes", "on")
        return "xla" if on else ""
    return ""


@dataclass
class TaskResult:
    """All rows of one task configuration with the task's settings."""

    task: str
    config: dict[str, Any]
    schedule: dict[str, int]
    rows: list[RowResult]
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "task": self.task,
            "config": self.config,
            "schedule": self.schedule,
            "wall_s": self.wall_s,
            "rows": [r.to_dict() for r in self.rows],
        }


def _run(label: str, config: dict, rows: list[Row], items: int, schedule: Schedule) -> TaskResult:
    start = time.perf_counter()
    results, ready = prepare_rows(rows, items)
    measure_rows(results, ready, schedule)
    return TaskResult(label, config, _schedule_dict(schedule), results, time.perf_counter() - start)


def _schedule_dict(schedule: Schedule) -> dict[str, int]:
    return {
        "steps_per_block": schedule.steps_per_block,
        "repeats": schedule.repeats,
        "warmup_blocks": schedule.warmup_blocks,
    }


def run_mlp(opts: Options) -> TaskResult:
    """Fig. 5: every MLP row, measured together."""
    task = MLPTask(dtype=opts.dtype)
    weights, data = mlp_weights(task), mlp_data(task)
    rows = training_rows("mlp", task, weights, data, opts)
    config = {
        "figure": "Fig. 5",
        "layers": "784-500(tanh)-10(softmax)",
        "batch": task.batch,
        "examples": task.n_examples,
        "lr": task.learning_rate,
        "dtype": task.dtype,
    }
    return _run(task.label, config, rows, task.batch, opts.plan.mlp)


def run_conv(opts: Options) -> list[TaskResult]:
    """Fig. 6: every ConvLarge row, compiled once, measured at each batch size in turn.

    Between batch sizes each row gets its initial weights back and the new batches, so the
    losses of steps 1 and 2 are comparable again while nothing is compiled twice.
    """
    plan = opts.plan
    tasks = [
        ConvTask(batch=b, n_examples=max(plan.conv_examples[b], b), dtype=opts.dtype)
        for b in plan.conv_batches
    ]
    weights = conv_weights(tasks[0])
    rows = training_rows("conv", tasks[0], weights, conv_data(tasks[0]), opts)
    out: list[TaskResult] = []
    template: list[RowResult] = []
    ready: dict[str, Prepared] = {}
    for task in tasks:
        start = time.perf_counter()
        if not out:
            results, ready = prepare_rows(rows, task.batch)
            template = results
        else:
            results = rebind_rows(template, ready, conv_data(task), task.batch)
            for result in results:
                if result.status == "ok":
                    result.note = "; ".join(
                        filter(None, [result.note, f"compiled in {out[0].task}"])
                    )
        schedule = plan.conv[task.batch]
        measure_rows(results, ready, schedule)
        config = {
            "figure": "Fig. 6",
            "layers": "256x256x1 c6@7x7 tanh p5 c16@7x7 tanh p4 d120 d10",
            "batch": task.batch,
            "examples": task.n_examples,
            "lr": task.learning_rate,
            "dtype": task.dtype,
        }
        out.append(
            TaskResult(
                task.label, config, _schedule_dict(schedule), results, time.perf_counter() - start
            )
        )
    return out


# --------------------------------------------------------------------------- element-wise


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
                    _minidl_variant(backend),
                ),
                _bind(minidl_rows.elemwise_function, backend, expression, dtype),
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
