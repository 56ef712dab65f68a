"""Bar charts in the style of the paper's Figs. 5-7 (matplotlib, Agg; log-scale bars)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmarks import paper
from benchmarks.suites import TaskResult

COLORS = {"reference": "#8c8c8c", "minidl": "#1f77b4", "raw": "#ff7f0e", "peer": "#2ca02c"}
PAPER_COLOR = "#b0a36d"


def available() -> bool:
    """Whether matplotlib is installed (charts are skipped with a note otherwise)."""
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ours_panel(ax, task: TaskResult, title: str) -> None:
    rows = [r for r in task.rows if r.status == "ok" and r.stats()]
    rows.sort(key=lambda r: r.stats()["per_s"])
    speeds = [r.stats()["per_s"] for r in rows]
    low = [s - r.stats()["per_s_worst"] for s, r in zip(speeds, rows)]
    high = [r.stats()["per_s_best"] - s for s, r in zip(speeds, rows)]
    ax.barh(
        range(len(rows)), speeds, xerr=[low, high], color=[COLORS[r.kind] for r in rows], capsize=2
    )
    ax.set_yticks(range(len(rows)), [r.name for r in rows], fontsize=8)
    for i, (speed, row) in enumerate(zip(speeds, rows)):
        ax.text(row.stats()["per_s_best"] * 1.15, i, _rate(speed), va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("examples / second (log scale)")
    ax.set_title(title, fontsize=9)


def _paper_panel(ax, numbers: dict[str, float], title: str) -> None:
    items = sorted(numbers.items(), key=lambda kv: kv[1])
    ax.barh(range(len(items)), [v for _, v in items], color=PAPER_COLOR)
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=8)
    for i, (_, value) in enumerate(items):
        ax.text(value * 1.1, i, _rate(value), va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("examples / second (log scale)")
    ax.set_title(title, fontsize=9)


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _lowest(task: TaskResult) -> float:
    speeds = [r.stats()["per_s_worst"] for r in task.rows if r.status == "ok" and r.stats()]
    return min(speeds, default=1.0)


def _highest(task: TaskResult) -> float:
    speeds = [r.stats()["per_s_best"] for r in task.rows if r.status == "ok" and r.stats()]
    return max(speeds, default=1.0)


def _legend(fig) -> None:
    from matplotlib.patches import Patch

    labels = {
        "reference": "NumPy hand-written",
        "minidl": "minidl (this project)",
        "raw": "same step, raw backend API",
        "peer": "peer frameworks",
    }
    handles = [Patch(color=COLORS[k], label=v) for k, v in labels.items()]
    handles.append(Patch(color=PAPER_COLOR, label="paper, 2010 hardware"))
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)


def training_chart(
    path: Path,
    title: str,
    ours: list[tuple[TaskResult, str]],
    published: dict[str, float],
    machine: str,
) -> None:
    """Our panels (one per task configuration) beside the paper's published bars."""
    plt = _pyplot()
    panels = len(ours) + 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6))
    for ax, (task, label) in zip(axes, ours):
        _ours_panel(ax, task, f"{label}\nthis machine: {machine}")
    _paper_panel(axes[-1], published, f"paper, 2010 hardware\n{paper.HARDWARE_SHORT}")
    low = min(min(published.values()), *(_lowest(t) for t, _ in ours))
    high = max(max(published.values()), *(_highest(t) for t, _ in ours))
    for ax in axes:  # one scale for all panels, so bar lengths compare across panels
        ax.set_xlim(low / 2, high * 5)
    fig.suptitle(title, fontsize=11)
    _legend(fig)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def elemwise_chart(path: Path, tasks: list[TaskResult], machine: str) -> None:
    """Fig. 7: speed-up over NumPy per expression, grouped bars per vector size."""
    plt = _pyplot()
    expressions = list(dict.fromkeys(t.config["expression"] for t in tasks))
    columns = 2 if len(expressions) > 1 else 1
    rows_count = (len(expressions) + columns - 1) // columns
    fig, axes = plt.subplots(
        rows_count, columns, figsize=(6.2 * columns, 3.8 * rows_count), squeeze=False
    )
    names = [
        r.name
        for r in tasks[0].rows
        if r.kind != "reference" and any(_ok(t, r.name) for t in tasks)
    ]
    cmap = plt.get_cmap("tab10")
    for ax, expression in zip(axes.flat, expressions):
        mine = [t for t in tasks if t.config["expression"] == expression]
        width = 0.8 / max(len(names), 1)
        for j, name in enumerate(names):
            values = []
            for task in mine:
                ref = next((r for r in task.rows if r.kind == "reference" and r.stats()), None)
                row = next((r for r in task.rows if r.name == name), None)
                ok = ref and row and row.status == "ok" and row.stats()
                values.append(ref.stats()["median_s"] / row.stats()["median_s"] if ok else 0.0)
            positions = [i + (j - (len(names) - 1) / 2) * width for i in range(len(mine))]
            ax.bar(positions, values, width, label=name, color=cmap(j % 10))
        if expression in paper.ELEMWISE_BEST:
            size, speedup = paper.ELEMWISE_BEST[expression]
            sizes = [t.config["size"] for t in mine]
            if size in sizes:
                ax.plot(
                    [sizes.index(size)],
                    [speedup],
                    marker="*",
                    color=PAPER_COLOR,
                    markersize=14,
                    linestyle="none",
                    label="paper, 2010 hardware (best)",
                )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        shown = [v for patch in ax.patches if (v := patch.get_height()) > 0]
        top = max([1.0, *shown, *(s for _, s in [paper.ELEMWISE_BEST.get(expression, (0, 0))])])
        ax.set_ylim(min([1.0, *shown]) / 2, top * 2)
        ax.set_xticks(range(len(mine)), [f"{t.config['size']:.0e}" for t in mine], fontsize=8)
        ax.set_xlabel("vector length")
        ax.set_ylabel("speed-up over NumPy (log scale)")
        ax.set_title(f"{expression}", fontsize=10)
    for ax in list(axes.flat)[len(expressions) :]:
        ax.set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat:  # the paper's star may sit on any panel
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8)
    fig.suptitle(
        f"Fig. 7 — element-wise expressions; this machine: {machine}\n{paper.ELEMWISE_NOTE}",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ok(task: TaskResult, name: str) -> bool:
    return any(r.name == name and r.status == "ok" and r.stats() for r in task.rows)


def write_charts(out_dir: Path, tasks: list[TaskResult], machine: str) -> list[str]:
    """Draw every chart whose tasks ran; returns the file names written."""
    written = []
    mlp = [t for t in tasks if t.task.startswith("mlp")]
    if mlp:
        training_chart(
            out_dir / "fig5_mlp.png",
            "Fig. 5 — MLP 784-500-10, batch 60, SGD",
            [(mlp[0], f"ours, {mlp[0].config['dtype']}")],
            paper.MLP,
            machine,
        )
        written.append("fig5_mlp.png")
    conv = [t for t in tasks if t.task.startswith("conv")]
    if conv:
        ours = [(t, f"ours, batch {t.config['batch']}, {t.config['dtype']}") for t in conv]
        training_chart(
            out_dir / "fig6_convlarge.png",
            "Fig. 6 — ConvLarge (256x256 input)",
            ours,
            paper.CONV,
            machine,
        )
        written.append("fig6_convlarge.png")
    elemwise = [t for t in tasks if t.task.startswith("elemwise")]
    if elemwise:
        elemwise_chart(out_dir / "fig7_elemwise.png", elemwise, machine)
        written.append("fig7_elemwise.png")
    return written
