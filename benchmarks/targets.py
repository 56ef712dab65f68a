"""The issue's speed targets, checked on the medians of one run, plus a same-step check.

Every ratio is throughput over throughput (higher is better for the first-named row). The
verdict uses the medians; the ratio of the fastest rounds is printed beside it, since on a
shared machine the fastest round is the one least disturbed by other processes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from benchmarks import paper
from benchmarks.harness import RowResult
from benchmarks.suites import TaskResult

# Relative tolerance for "all rows computed the same step" (losses of steps 1 and 2).
LOSS_RTOL = {"float32": 2e-3, "float64": 1e-6}


@dataclass
class Check:
    """One target: what was compared, the measured ratio, the threshold and the verdict."""

    task: str
    target: str
    ratio: float | None
    threshold: float
    verdict: str  # "PASS" | "FAIL" | "n/a"
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _speed(row: RowResult | None) -> float | None:
    if row is None or row.status != "ok":
        return None
    stats = row.stats()
    return stats["per_s"] if stats else None


def _find(task: TaskResult, **match: str) -> RowResult | None:
    for row in task.rows:
        if all(getattr(row, key) == value for key, value in match.items()):
            return row
    return None


def _ratio_check(task, target, mine, theirs, threshold, what) -> Check:
    a, b = _speed(mine), _speed(theirs)
    if a is None or b is None:
        missing = [r.name if r else "?" for r, s in ((mine, a), (theirs, b)) if s is None]
        return Check(task, target, None, threshold, "n/a", f"not measured: {', '.join(missing)}")
    ratio = a / b  # judged on medians; the fastest rounds are shown for context
    verdict = "PASS" if ratio >= threshold else "FAIL"
    best = mine.stats()["per_s_best"] / theirs.stats()["per_s_best"]
    detail = (
        f"{mine.name} {a:,.1f}/s vs {theirs.name} {b:,.1f}/s ({what}; fastest rounds: {best:.2f}x)"
    )
    return Check(task, target, ratio, threshold, verdict, detail)


def _minidl_rows(task: TaskResult, device: str = "cpu") -> list[RowResult]:
    return [
        r
        for r in task.rows
        if r.kind == "minidl"
        and r.device == device
        and r.timed == "model.train_on_batch"
        and r.variant != "xla"
    ]


def overhead_checks(task: TaskResult) -> list[Check]:
    """Each minidl backend >= 0.9x the same step written directly in that backend."""
    checks = []
    for mine in _minidl_rows(task):
        if mine.framework == "numpy":
            theirs = _find(task, kind="reference", framework="numpy")
        else:
            theirs = _find(task, kind="raw", framework=mine.framework, variant=mine.variant)
        if theirs is None:
            continue
        checks.append(
            _ratio_check(
                task.task,
                f"{mine.name} >= 0.9x direct",
                mine,
                theirs,
                0.9,
                "same step, same setting",
            )
        )
    for mine in (r for r in task.rows if r.kind == "minidl" and r.variant == "xla"):
        theirs = _find(task, kind="raw", framework="tensorflow", variant="xla", device=mine.device)
        if theirs is not None:
            checks.append(
                _ratio_check(
                    task.task,
                    "minidl tensorflow XLA >= 0.9x direct",
                    mine,
                    theirs,
                    0.9,
                    "both with XLA",
                )
            )
    return checks


def mlp_checks(task: TaskResult) -> list[Check]:
    """Fastest minidl CPU backend: >= 0.8x hand-written NumPy, faster than torch and Keras fit."""
    candidates = [r for r in _minidl_rows(task) if _speed(r) is not None]
    if not candidates:
        return [
            Check(
                task.task,
                "fastest minidl vs hand-written NumPy",
                None,
                0.8,
                "n/a",
                "no minidl row measured",
            )
        ]
    best = max(candidates, key=_speed)
    checks = [
        _ratio_check(
            task.task,
            "fastest minidl >= 0.8x hand-written NumPy",
            best,
            _find(task, kind="reference"),
            0.8,
            "fastest minidl backend",
        )
    ]
    for peer, label in (
        (_find(task, framework="torch", device="cpu"), "PyTorch eager"),
        (_find(task, framework="keras", variant="fit"), "Keras 3 fit"),
    ):
        if peer is not None and peer.status == "ok":
            checks.append(
                _ratio_check(
                    task.task,
                    f"fastest minidl beats {label}",
                    best,
                    peer,
                    1.0,
                    "fastest minidl backend",
                )
            )
        elif peer is not None:
            checks.append(
                Check(
                    task.task,
                    f"fastest minidl beats {label}",
                    None,
                    1.0,
                    "n/a",
                    f"{peer.name}: {peer.status} ({peer.note})",
                )
            )
    return checks


def conv_checks(task: TaskResult) -> list[Check]:
    """ConvLarge: numpy within 1.5x of the best backend and, at batch 1, >= tensorflow."""
    candidates = [r for r in _minidl_rows(task) if _speed(r) is not None]
    numpy_row = _find(
        task, kind="minidl", framework="numpy", device="cpu", timed="model.train_on_batch"
    )
    if not candidates or numpy_row is None:
        return []
    best = max(candidates, key=_speed)
    checks = [
        _ratio_check(
            task.task,
            "minidl numpy within 1.5x of best backend",
            numpy_row,
            best,
            1 / 1.5,
            f"best backend: {best.name}",
        )
    ]
    tensorflow_row = _find(
        task, kind="minidl", framework="tensorflow", device="cpu", timed="model.train_on_batch"
    )
    if task.task == "conv_b1" and tensorflow_row is not None:
        checks.append(
            _ratio_check(
                task.task,
                "minidl numpy >= 1.0x minidl tensorflow",
                numpy_row,
                tensorflow_row,
                1.0,
                "batch 1, same step",
            )
        )
    return checks


def gpu_checks(task: TaskResult) -> list[Check]:
    """GPU over CPU for the best minidl rows, against the paper's 5.8x (only with GPU rows)."""
    gpu = [r for r in _minidl_rows(task, "gpu") if _speed(r) is not None]
    cpu = [r for r in _minidl_rows(task) if _speed(r) is not None]
    if not gpu or not cpu:
        return []
    best_gpu, best_cpu = max(gpu, key=_speed), max(cpu, key=_speed)
    return [
        _ratio_check(
            task.task,
            f"GPU/CPU >= paper's {paper.GPU_OVER_CPU_MLP}x",
            best_gpu,
            best_cpu,
            paper.GPU_OVER_CPU_MLP,
            "best minidl GPU vs best CPU",
        )
    ]


def same_step_check(task: TaskResult, dtype: str) -> Check:
    """All rows report the same losses for steps 1 and 2 (same weights, data and update)."""
    rows = [r for r in task.rows if r.status == "ok" and r.first_loss is not None]
    ref = next((r for r in rows if r.kind == "reference"), rows[0] if rows else None)
    if ref is None:
        return Check(task.task, "all rows compute the same step", None, 0.0, "n/a", "no rows")
    rtol, worst, worst_row = LOSS_RTOL[dtype], 0.0, ""
    for row in rows:
        for mine, theirs in ((row.first_loss, ref.first_loss), (row.second_loss, ref.second_loss)):
            if mine is None or theirs is None:
                continue
            err = abs(mine - theirs) / max(abs(theirs), 1e-12)
            if err > worst:
                worst, worst_row = err, row.name
    verdict = "PASS" if worst <= rtol else "FAIL"
    detail = f"largest relative loss difference {worst:.1e} ({worst_row or 'none'}), rtol {rtol}"
    return Check(task.task, "all rows compute the same step", None, rtol, verdict, detail)


def evaluate(tasks: list[TaskResult], dtype: str) -> list[Check]:
    """All checks for the tasks that ran (the element-wise value checks folded into one)."""
    checks: list[Check] = []
    elemwise = []
    for task in tasks:
        if task.task.startswith("elemwise"):
            elemwise.append(same_step_check(task, dtype))
            continue
        checks.append(same_step_check(task, dtype))
        checks.extend(overhead_checks(task))
        if task.task.startswith("mlp"):
            checks.extend(mlp_checks(task))
            checks.extend(gpu_checks(task))
        else:
            checks.extend(conv_checks(task))
    if elemwise:
        failed = [c for c in elemwise if c.verdict == "FAIL"]
        detail = "; ".join(f"{c.task}: {c.detail}" for c in failed) or (
            f"{len(elemwise)} expression/size pairs agree within rtol {LOSS_RTOL[dtype]}"
        )
        verdict = "FAIL" if failed else "PASS"
        target = "all rows compute the same values"
        checks.append(Check("elemwise", target, None, LOSS_RTOL[dtype], verdict, detail))
    return checks
