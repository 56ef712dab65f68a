"""Assemble each task's rows (reference, minidl, raw backend, peers) and measure them together."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import minidl_rows, numpy_reference, peers, raw_pytensor, raw_tensorflow
from benchmarks.harness import (
    Prepared,
    Row,
    RowResult,
    Schedule,
    measure_rows,
    prepare_rows,
    rebind_rows,
)
from benchmarks.tasks import (
    ConvTask,
    MLPTask,
    Plan,
    conv_data,
    conv_weights,
    mlp_data,
    mlp_weights,
)


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
        pending = [loss]  # step one already ran (inside env); later calls run a step again

        def first() -> float:
            return pending.pop() if pending else prepared.first()

        return Prepared(
            first=first,
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
            variant = minidl_variant(backend)
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
                other = raw_pytensor.other_mode(minidl_variant(backend))[0]
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
                        bind(pt_step, task, weights, data, mode),
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
                        bind(tf_step, task, weights, data, xla, device),
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
                    bind(torch_step, task, weights, data, device),
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
                            bind(keras_step, task, weights, data, use_fit),
                            timed,
                            device,
                            api,
                        )
                    )
    return rows


def bind(fn: Callable[..., Prepared], *args: Any) -> Callable[[], Prepared]:
    return lambda: fn(*args)


def _minidl(backend, model, task, weights, data, use_fit, device) -> Callable[[], Prepared]:
    return lambda: minidl_rows.training_row(backend, model, task, weights, data, use_fit, device)


def minidl_variant(backend: str) -> str:
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
