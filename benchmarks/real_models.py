"""The driver shared by the real-network benchmarks (``benchmarks.vgg16``, ``benchmarks.unet``).

A benchmark is a ``ModelBenchmark``: its configurations and three row builders (minidl on a
backend, Keras 3 on TensorFlow, PyTorch). Every configuration times a training step
(``train_on_batch``, SGD) or a prediction (``predict_on_batch``) on one fixed batch; all rows
start from the same weights. Speed is measured in one process with interleaved rounds
(``harness``), so the ratios to Keras 3 hold on a noisy machine. Compile time is preparing
the row plus its first call. Peak memory is measured in a fresh process per row
(``--memory-row``): the process's peak resident set while it prepares the row and runs
three calls, and how much of it the row added to the process after its imports. ``main``
writes ``<name>.json`` and ``<name>.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import environment, harness
from benchmarks.harness import Prepared, Row, RowResult, Schedule, Skip

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
BACKENDS = ("numpy", "theano", "tensorflow")


@dataclass(frozen=True)
class Config:
    """One measured call: ``kind`` ("train" or "predict") on ``batch`` images of ``size``."""

    kind: str
    batch: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.batch}x{self.size}"

    @staticmethod
    def parse(text: str) -> Config:
        kind, _, rest = text.partition(":")
        batch, _, size = rest.partition("x")
        if kind not in ("train", "predict") or not batch.isdigit() or not size.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected kind:BATCHxSIZE such as train:8x112. Received: {text!r}"
            )
        return Config(kind, int(batch), int(size))


@dataclass(frozen=True)
class ModelBenchmark:
    """One network's benchmark: its configurations, row builders and ratio targets.

    ``targets`` maps ``(framework, kind)`` such as ``("numpy", "train")`` to the least
    ratio to Keras 3's median; ``summary`` is a line printed under the report's title.
    """

    name: str  # module benchmarks.<name>, files <name>.json and <name>.md
    title: str
    configs: tuple[Config, ...]
    minidl_row: Callable[[str, Config], Prepared]
    keras_row: Callable[[Config], Prepared]
    torch_row: Callable[[Config], Prepared]
    targets: Mapping[tuple[str, str], float] = field(default_factory=dict)
    summary: str = ""

    @property
    def module(self) -> str:
        return f"benchmarks.{self.name}"


# ----------------------------------------------------------------------------- rows


def summed(value: Any) -> float:
    """The sum of a loss or a prediction, as a float (also waits for asynchronous runtimes)."""
    return float(np.sum(np.asarray(value), dtype=np.float64))


def averaged(value: Any) -> float:
    """The mean of a loss or a prediction (a mask's mean probability), as a float."""
    return float(np.mean(np.asarray(value), dtype=np.float64))


def model_calls(
    config: Config, x: Any, y: Any, train: Callable, predict: Callable, value: Callable = summed
) -> Prepared:
    """``Prepared`` whose step is ``train(x, y)`` or ``predict(x)``, by ``config.kind``.

    A block returns ``value`` of its last step's loss or prediction.
    """

    def block(n: int) -> float:
        out = None
        for _ in range(n):
            out = train(x, y) if config.kind == "train" else predict(x)
        return value(out)

    return Prepared(first=lambda: block(1), block=block)


def minidl_prepared(
    backend: str, model: Any, config: Config, x: Any, y: Any, value: Callable = summed
) -> Prepared:
    """A compiled minidl ``model``'s row on ``backend`` (made current before each block)."""
    from benchmarks.minidl_rows import backend_setting
    from minidl import backend as K

    prepared = model_calls(config, x, y, model.train_on_batch, model.predict_on_batch, value)
    prepared.note = backend_setting(backend)

    def activate() -> None:
        if K.name() != backend:
            K.set_backend(backend)

    prepared.activate = activate
    return prepared


def keras_prepared(
    model: Any, config: Config, x: Any, y: Any, value: Callable = summed
) -> Prepared:
    """A compiled Keras 3 ``model``'s row."""
    prepared = model_calls(config, x, y, model.train_on_batch, model.predict_on_batch, value)
    prepared.note = f"jit_compile={model.jit_compile}"
    return prepared


def require_torch() -> Any:
    """Import PyTorch with the benchmark's thread setting (``Skip`` when absent)."""
    torch = harness.import_or_skip("torch", "optional peer: pip install torch==2.13.0")
    environment.apply_framework_threads("torch")
    return torch


def torch_prepared(
    model: Any,
    config: Config,
    x: Any,
    target: Any,
    loss_fn: Callable,
    learning_rate: float,
    probabilities: Callable,
    value: Callable = summed,
) -> Prepared:
    """A PyTorch ``model``'s row: an SGD step on ``loss_fn(model(x), target)``, or a prediction.

    The model is in training mode for "train" and in evaluation mode for "predict" (what
    ``train_on_batch`` and ``predict_on_batch`` do with batch normalisation and dropout);
    ``probabilities`` maps the model's outputs to what Keras' model predicts.
    """
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    model.train(config.kind == "train")

    def train(x: Any, target: Any) -> float:
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
        return loss.item()

    def predict(x: Any) -> Any:
        with torch.no_grad():
            return probabilities(model(x))

    prepared = model_calls(config, x, target, train, predict, value)
    prepared.note = f"torch {torch.__version__}"
    return prepared


def rows(
    bench: ModelBenchmark, config: Config, backends: Sequence[str], peers: bool = True
) -> list[Row]:
    """The rows of one configuration: minidl per backend, then Keras 3 and PyTorch."""
    timed = "train_on_batch" if config.kind == "train" else "predict_on_batch"
    found = [
        Row(f"minidl {b}", "minidl", b, lambda b=b: bench.minidl_row(b, config), timed)
        for b in backends
    ]
    if not peers:
        return found
    keras = Row("Keras 3 (TensorFlow)", "peer", "keras", lambda: bench.keras_row(config), timed)
    torch_timed = "SGD step" if config.kind == "train" else "no_grad forward"
    torch = Row("PyTorch", "peer", "torch", lambda: bench.torch_row(config), torch_timed)
    return [*found, keras, torch]


# --------------------------------------------------------------------------- memory


def _status_mb(field_name: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process, in MB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


def memory_of_row(
    bench: ModelBenchmark, name: str, config: Config, backends: Sequence[str]
) -> dict[str, float]:
    """Run one row in this (fresh) process: its peak resident set and what the row added."""
    row = next(r for r in rows(bench, config, backends) if r.name == name)
    for module in ("numpy", "minidl"):
        __import__(module)
    before = _status_mb("VmRSS")
    prepared = row.prepare()
    prepared.first()
    prepared.block(2)
    peak = _status_mb("VmHWM")  # not ru_maxrss: Linux carries the parent's over exec
    return {"peak_mb": round(peak, 1), "added_mb": round(peak - before, 1)}


def measure_memory(
    bench: ModelBenchmark, name: str, config: Config, backends: Sequence[str]
) -> dict[str, Any]:
    """``memory_of_row`` in a child process (a process's peak never goes down)."""
    command = [sys.executable, "-m", bench.module, "--memory-row", name]
    command += ["--only", config.label, "--backends", ",".join(backends)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}


# -------------------------------------------------------------------------- running


def _median(result: RowResult) -> float | None:
    stats = result.stats()
    return stats["median_s"] if stats else None


def run_config(
    bench: ModelBenchmark,
    config: Config,
    backends: Sequence[str],
    schedule: Schedule,
    memory: bool,
    peers: bool = True,
) -> dict[str, Any]:
    """Prepare, time and (optionally) weigh every row of one configuration."""
    results, ready = harness.prepare_rows(rows(bench, config, backends, peers), config.batch)
    harness.measure_rows(results, ready, schedule)
    keras = next((r for r in results if r.framework == "keras"), None)
    keras_s = _median(keras) if keras else None
    table = []
    for result in results:
        entry = result.to_dict()
        median = _median(result)
        entry["vs_keras"] = keras_s / median if keras_s and median else None
        if memory and result.status == "ok":
            entry["memory"] = measure_memory(bench, result.name, config, backends)
        table.append(entry)
    return {"config": config.label, "rows": table}


def check_targets(
    report: list[dict[str, Any]], targets: Mapping[tuple[str, str], float]
) -> list[dict[str, Any]]:
    """PASS/FAIL of every ratio target on the medians."""
    checks = []
    for block in report:
        kind = block["config"].split(":")[0]
        for entry in block["rows"]:
            goal = targets.get((entry["framework"], kind))
            if goal is None:
                continue
            ratio = entry.get("vs_keras")
            checks.append(
                {
                    "config": block["config"],
                    "row": entry["name"],
                    "target": f">= {goal}x Keras 3",
                    "ratio": ratio,
                    "pass": ratio is not None and ratio >= goal,
                }
            )
    return checks


def _table_line(e: dict[str, Any]) -> str:
    stats, memory = e["stats"], e.get("memory") or {}
    median = f"{stats['median_s']:.3f}" if stats else e["status"]
    spread = f"{stats['min_s']:.3f}..{stats['max_s']:.3f}" if stats else ""
    ratio = f"{e['vs_keras']:.2f}x" if e.get("vs_keras") else ""
    compile_s = f"{e['compile_s']:.1f}" if e["compile_s"] is not None else ""
    peak = f"{memory['peak_mb']:.0f} ({memory['added_mb']:.0f})" if "peak_mb" in memory else ""
    values = (
        f"{e['first_loss']:.4f} / {e['second_loss']:.4f}" if e["first_loss"] is not None else ""
    )
    return (
        f"| {e['name']} | {median} | {spread} | {ratio} | {compile_s} | {peak} "
        f"| {values} | {e['note']} |"
    )


def markdown(
    bench: ModelBenchmark, report: list[dict[str, Any]], checks: list[dict[str, Any]], command: str
) -> str:
    """The tables (one per configuration) and the target checks."""
    lines = [f"# {bench.title}\n\n`{command}`\n"]
    if bench.summary:
        lines.append(f"{bench.summary}\n")
    for block in report:
        lines += [
            f"## {block['config']}\n",
            "| row | median s | range s | vs Keras 3 | compile s | peak MB (row adds) "
            "| value step 1 / 2 | note |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        lines += [_table_line(e) for e in block["rows"]]
        lines.append("")
    if not bench.targets:
        return "\n".join(lines)
    lines += ["## Targets (medians)\n", "| configuration | row | target | ratio | result |"]
    lines.append("|---|---|---|---:|---|")
    for c in checks:
        ratio = f"{c['ratio']:.2f}x" if c["ratio"] else "n/a"
        lines.append(
            f"| {c['config']} | {c['row']} | {c['target']} | {ratio} "
            f"| {'PASS' if c['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(bench: ModelBenchmark, argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring of the benchmark)."""
    parser = argparse.ArgumentParser(prog=f"python -m {bench.module}")
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 5")
    parser.add_argument(
        "--only",
        type=lambda text: tuple(Config.parse(t) for t in text.split(",") if t.strip()),
        default=bench.configs,
        help=f"configurations, e.g. {','.join(c.label for c in bench.configs[:2])} "
        f"(default: all {len(bench.configs)})",
    )
    parser.add_argument(
        "--backends",
        type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
        default=BACKENDS,
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--no-peers", action="store_true", help="minidl rows only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--memory-row", help=argparse.SUPPRESS)  # child process for memory
    args = parser.parse_args(argv)
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"--backends takes {', '.join(BACKENDS)}. Received: {unknown}")
    return args


def main(bench: ModelBenchmark, argv: Sequence[str] | None = None) -> int:
    """Run ``bench`` and write ``<name>.json`` / ``<name>.md``; print the markdown."""
    args = parse_args(bench, argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.memory_row:
        try:
            print(json.dumps(memory_of_row(bench, args.memory_row, args.only[0], args.backends)))
        except Skip as reason:
            print(json.dumps({"error": str(reason)}))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    schedule = Schedule(steps_per_block=1, repeats=3 if args.quick else 5, pause_s=0.1)
    report = [
        run_config(bench, c, args.backends, schedule, not args.no_memory, not args.no_peers)
        for c in args.only
    ]
    checks = check_targets(report, bench.targets)
    command = f"python -m {bench.module}" + (" " + " ".join(sys.argv[1:]) if argv is None else "")
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": environment.machine(),
        "threads": environment.thread_report(),
        "load_average": os.getloadavg(),
        "results": report,
        "targets": checks,
    }
    (args.out / f"{bench.name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    text = markdown(bench, report, checks, command)
    (args.out / f"{bench.name}.md").write_text(text)
    print(text)
    return 0
