"""Write the results: a JSON file of every number, a markdown report and paper-style bar charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import paper
from benchmarks.harness import RowResult
from benchmarks.suites import TaskResult
from benchmarks.targets import Check

METHOD = (
    "Each row is built and compiled first (compile time = building it plus its first step). "
    "After a warm-up block, the timed blocks of all rows of a task are interleaved round by "
    "round (order rotated each round) in one process, so noise falls on every row alike. A "
    "block runs several consecutive steps on pre-sliced NumPy batches; a row's step time is "
    "block time / steps; a 0.1 s pause before each block lets the previous row's thread pools "
    "go idle. Reported: median examples/s over the rounds, with the range from the "
    "slowest to the fastest round. All rows start from the same initial weights and see the "
    "same batches in the same order; the losses of steps 1 and 2 are compared as a check that "
    "every row computes the same step. Targets are judged on the medians. A minidl model's "
    "backend is made current before its block starts, outside the clock. Conv batch 60 (and "
    "the XLA / second PyTensor-mode rows) run only in the full mode."
)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write all numbers and the machine description as indented JSON."""
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _fmt_rate(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _reference_speed(task: TaskResult) -> float | None:
    for row in task.rows:
        if row.kind == "reference" and row.status == "ok" and row.stats():
            return row.stats()["per_s"]
    return None


def training_table(task: TaskResult) -> list[str]:
    """Markdown table of one training task: throughput, spread, ratio, compile time, losses."""
    ref = _reference_speed(task)
    lines = [
        "| implementation | timed call | examples/s (median) | range (slowest..fastest) "
        "| step ms | vs NumPy hand-written | compile s | loss step 1 / 2 | note |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in task.rows:
        lines.append(_training_line(row, ref))
    return lines


def _training_line(row: RowResult, ref: float | None) -> str:
    stats = row.stats()
    if row.status != "ok" or stats is None:
        return f"| {row.name} | {row.timed} | {row.status} | | | | | | {row.note} |"
    ratio = f"{stats['per_s'] / ref:.2f}x" if ref else ""
    spread = f"{_fmt_rate(stats['per_s_worst'])}..{_fmt_rate(stats['per_s_best'])}"
    compile_s = f"{row.compile_s:.2f}" if row.compile_s is not None else ""
    losses = f"{row.first_loss:.4f} / {row.second_loss:.4f}" if row.second_loss else ""
    return (
        f"| {row.name} | {row.timed} | {_fmt_rate(stats['per_s'])} | {spread} "
        f"| {stats['median_s'] * 1e3:.2f} | {ratio} | {compile_s} | {losses} | {row.note} |"
    )


def elemwise_table(tasks: list[TaskResult]) -> list[str]:
    """Speed-up over NumPy per expression (rows) and implementation (columns), per size."""
    names: list[str] = []
    for task in tasks:
        for row in task.rows:
            if row.name not in names:
                names.append(row.name)
    lines = ["| expression | n | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for task in tasks:
        ref = _reference_speed(task)
        cells = []
        for name in names:
            row = next((r for r in task.rows if r.name == name), None)
            stats = row.stats() if row else None
            if row is None or stats is None or row.status != "ok" or not ref:
                cells.append(row.status if row else "")
            else:
                cells.append(f"{stats['per_s'] / ref:.2f}x")
        config = task.config
        lines.append(
            f"| `{config['expression']}` | {config['size']:.0e} | " + " | ".join(cells) + " |"
        )
    return lines


def elemwise_times(tasks: list[TaskResult]) -> list[str]:
    """Absolute NumPy times, so the speed-ups can be turned back into seconds."""
    lines = ["| expression | n | NumPy µs per call (median) |", "|---|---:|---:|"]
    for task in tasks:
        ref = next((r for r in task.rows if r.kind == "reference" and r.stats()), None)
        if ref is not None:
            lines.append(
                f"| `{task.config['expression']}` | {task.config['size']:.0e} "
                f"| {ref.stats()['median_s'] * 1e6:,.1f} |"
            )
    return lines


def checks_table(checks: list[Check]) -> list[str]:
    """PASS/FAIL list of the speed targets and the same-step checks."""
    lines = [
        "| task | target | ratio | threshold | result | detail |",
        "|---|---|---:|---:|---|---|",
    ]
    for c in checks:
        ratio = f"{c.ratio:.2f}x" if c.ratio is not None else ""
        threshold = f"{c.threshold:.2f}x" if c.ratio is not None else f"{c.threshold:g}"
        lines.append(
            f"| {c.task} | {c.target} | {ratio} | {threshold} | **{c.verdict}** | {c.detail} |"
        )
    return lines


def paper_tables() -> list[str]:
    """The paper's published numbers (2010 hardware)."""
    lines = [
        f"Hardware: {paper.HARDWARE}.",
        "",
        "| Fig. 5 MLP (batch 60) | examples/s |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value:,.0f} |" for name, value in paper.MLP.items()]
    lines += ["", "| Fig. 6 ConvLarge (batch 1) | examples/s |", "|---|---:|"]
    lines += [f"| {name} | {value:g} |" for name, value in paper.CONV.items()]
    lines += ["", f"Fig. 7: {paper.ELEMWISE_NOTE}."]
    return lines


def _load(payload: dict[str, Any], when: str) -> str:
    loads = payload.get("load_average_1_5_15min", {}).get(when)
    return "/".join(f"{v:.1f}" for v in loads) if loads else "unknown"


def markdown(payload: dict[str, Any], tasks: list[TaskResult], checks: list[Check]) -> str:
    """The whole report as markdown."""
    machine, settings = payload["machine"], payload["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    threads = payload["threads"]
    thread_text = ", ".join(f"{k}={v}" for k, v in threads.items() if k != "blas")
    blas = "; ".join(
        f"{b['internal_api']} {b.get('version')} ({b['num_threads']} threads"
        + (f", {b['architecture']} kernels)" if b.get("architecture") else ")")
        for b in threads.get("blas", [])
    )
    out = [
        "# Theano paper benchmarks, reproduced with minidl",
        "",
        f"Command: `{payload['command']}`  ",
        f"Date: {payload['date']}  ",
        f"Machine: {machine['cpu']} ({machine['cores']} cores; {', '.join(machine['cpu_flags'])}); "
        f"{machine['platform']}  ",
        f"Versions: {versions}  ",
        f"Threads: {thread_text}; BLAS: {blas or 'unknown'}  ",
        f"Load average (1, 5, 15 min) at start {_load(payload, 'start')}, at end "
        f"{_load(payload, 'end')} on {machine['cores']} cores  ",
        f"Settings: dtype {settings['dtype']}, devices {', '.join(settings['devices'])}, "
        f"mode {settings['mode']}, backends {', '.join(settings['backends'])}, --threads "
        f"{settings['threads']} (1: every library on one thread, as in the paper; 0: defaults)",
        "",
        f"Method: {METHOD}",
        "",
    ]
    if payload.get("notes"):
        out += ["Notes:", ""] + [f"- {note}" for note in payload["notes"]] + [""]
    if checks:
        out += ["## Targets", ""] + checks_table(checks) + [""]
    for task in tasks:
        if task.task.startswith("elemwise"):
            continue
        config = task.config
        out += [
            f"## {config['figure']} — {task.task} ({config['layers']}, batch "
            f"{config['batch']}, {config['dtype']})",
            "",
        ]
        out += training_table(task) + [""]
    elemwise = [t for t in tasks if t.task.startswith("elemwise")]
    if elemwise:
        out += [
            "## Fig. 7 — element-wise expressions, speed-up over NumPy "
            "(higher is better; compiled once with `K.function` / each framework's compiler)",
            "",
        ]
        out += elemwise_table(elemwise) + [""] + elemwise_times(elemwise) + [""]
    out += ["## The paper's published numbers (2010 hardware, for comparison)", ""]
    out += paper_tables() + [""]
    if payload.get("charts"):
        out += ["Charts: " + ", ".join(f"`{c}`" for c in payload["charts"]), ""]
    return "\n".join(out)
