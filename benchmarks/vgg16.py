"""VGG16 (no top, then ``Flatten`` and ``Dense(2)``) on minidl beside Keras 3 and PyTorch.

Usage::

    python -m benchmarks.vgg16 --quick       # 3 rounds per configuration, ~10 minutes
    python -m benchmarks.vgg16               # 5 rounds
    python -m benchmarks.vgg16 --only train:8x112 --backends numpy --no-memory

Configurations: a training step (``train_on_batch``, SGD) and a prediction
(``predict_on_batch``) at batch 8 on 112x112 images and at batch 1 on 224x224 images. Rows:
minidl on each backend, Keras 3 on TensorFlow and PyTorch (each when installed), all from the
same initial weights on the same batch, each library with its default threads. Speed is
measured in one process with interleaved rounds (``harness``), so the ratios to Keras 3 hold
on a noisy machine. Compile time is preparing the row plus its first call. Peak memory is
measured in a fresh process per row (``--memory-row``): the process's peak resident set
while it prepares the row and runs three calls, and how much of it the row added to the
process after its imports. Writes ``vgg16.json`` and ``vgg16.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import environment, harness
from benchmarks.harness import Prepared, Row, RowResult, Schedule, Skip

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
BACKENDS = ("numpy", "theano", "tensorflow")
LEARNING_RATE = 1e-3
CLASSES = 2
# train >= 0.8x Keras 3's step, predict >= 1.0x (numpy); theano train >= 0.8x
TARGETS = {("numpy", "train"): 0.8, ("numpy", "predict"): 1.0, ("theano", "train"): 0.8}


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


CONFIGS = tuple(
    Config(kind, batch, size)
    for batch, size in ((8, 112), (1, 224))
    for kind in ("train", "predict")
)


def batch_data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """One batch of images and one-hot labels (fixed seed)."""
    rng = np.random.default_rng(config.batch * 1000 + config.size)
    x = rng.uniform(-1.0, 1.0, (config.batch, config.size, config.size, 3)).astype("float32")
    y = np.eye(CLASSES, dtype="float32")[np.arange(config.batch) % CLASSES]
    return x, y


def initial_weights(size: int) -> list[np.ndarray]:
    """Glorot-uniform kernels and zero biases in the Keras layout (HWIO; flatten order HWC)."""
    rng = np.random.default_rng(0)
    weights, channels = [], 3
    for width, convs in zip((64, 128, 256, 512, 512), (2, 2, 3, 3, 3)):
        for _ in range(convs):
            limit = np.sqrt(6.0 / (9 * channels + 9 * width))
            weights += [rng.uniform(-limit, limit, (3, 3, channels, width)), np.zeros(width)]
            channels = width
    flat = (size // 32) ** 2 * 512
    limit = np.sqrt(6.0 / (flat + CLASSES))
    weights += [rng.uniform(-limit, limit, (flat, CLASSES)), np.zeros(CLASSES)]
    return [w.astype("float32") for w in weights]


def _calls(
    config: Config, train: Callable, predict: Callable, to_float: Callable = float
) -> Prepared:
    """``Prepared`` whose step is one training step or one prediction on the fixed batch."""
    x, y = batch_data(config)
    if config.kind == "train":

        def block(n: int) -> float:
            loss = None
            for _ in range(n):
                loss = train(x, y)
            return to_float(loss)

    else:

        def block(n: int) -> float:
            out = None
            for _ in range(n):
                out = predict(x)
            return to_float(out)

    return Prepared(first=lambda: block(1), block=block)


# ----------------------------------------------------------------------------- rows


def minidl_row(backend: str, config: Config) -> Prepared:
    """minidl's ``VGG16(include_top=False)`` plus ``Flatten`` and ``Dense(2)`` on ``backend``."""
    from benchmarks.minidl_rows import backend_setting, use_backend

    K = use_backend(backend, "cpu")
    from minidl.applications.vgg16 import VGG16
    from minidl.layers import Dense, Flatten
    from minidl.optimizers import SGD

    model = VGG16(include_top=False, input_shape=(config.size, config.size, 3))
    model.add(Flatten())
    model.add(Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=SGD(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    model.set_weights(initial_weights(config.size))
    prepared = _calls(
        config,
        model.train_on_batch,
        model.predict_on_batch,
        lambda v: float(np.sum(v)),
    )
    prepared.note = backend_setting(backend)

    def activate() -> None:
        if K.name() != backend:
            K.set_backend(backend)

    prepared.activate = activate
    return prepared


def keras_row(config: Config) -> Prepared:
    """Keras 3's ``applications.VGG16(include_top=False)`` plus the same head, on TensorFlow."""
    from benchmarks.peers import require_keras

    keras = require_keras()
    base = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(config.size, config.size, 3)
    )
    model = keras.Sequential(
        [base, keras.layers.Flatten(), keras.layers.Dense(CLASSES, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss="categorical_crossentropy",
    )
    model.set_weights(initial_weights(config.size))
    prepared = _calls(
        config, model.train_on_batch, model.predict_on_batch, lambda v: float(np.sum(v))
    )
    prepared.note = f"jit_compile={model.jit_compile}"
    return prepared


def torch_row(config: Config) -> Prepared:
    """The same network in PyTorch (NCHW; weights converted from the Keras layout)."""
    torch = harness.import_or_skip("torch", "optional peer: pip install torch==2.13.0")
    environment.apply_framework_threads("torch")
    nn = torch.nn
    weights = initial_weights(config.size)
    layers: list[Any] = []
    at, channels = 0, 3
    for width, convs in zip((64, 128, 256, 512, 512), (2, 2, 3, 3, 3)):
        for _ in range(convs):
            conv = nn.Conv2d(channels, width, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(weights[at].transpose(3, 2, 0, 1).copy()))
                conv.bias.copy_(torch.from_numpy(weights[at + 1]))
            layers += [conv, nn.ReLU()]
            at, channels = at + 2, width
        layers.append(nn.MaxPool2d(2))
    side = config.size // 32
    dense = nn.Linear(side * side * 512, CLASSES)
    kernel = weights[at].reshape(side, side, 512, CLASSES).transpose(3, 2, 0, 1)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(kernel.reshape(CLASSES, -1).copy()))
        dense.bias.copy_(torch.from_numpy(weights[at + 1]))
    model = nn.Sequential(*layers, nn.Flatten(), dense)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()

    def train(x: Any, y: Any) -> float:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def predict(x: Any) -> Any:
        with torch.no_grad():
            return torch.softmax(model(x), dim=1)

    x, y = batch_data(config)
    x_nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(y.argmax(axis=1))

    def block(n: int) -> float:
        value = 0.0
        for _ in range(n):
            if config.kind == "train":
                value = train(x_nchw, labels)
            else:
                value = float(predict(x_nchw).sum())
        return value

    return Prepared(first=lambda: block(1), block=block, note=f"torch {torch.__version__}")


def rows(config: Config, backends: Sequence[str], peers: bool = True) -> list[Row]:
    """The rows of one configuration: minidl per backend, then Keras 3 and PyTorch."""
    timed = "train_on_batch" if config.kind == "train" else "predict_on_batch"
    found = [
        Row(f"minidl {b}", "minidl", b, lambda b=b: minidl_row(b, config), timed) for b in backends
    ]
    if not peers:
        return found
    found.append(Row("Keras 3 (TensorFlow)", "peer", "keras", lambda: keras_row(config), timed))
    torch_timed = "SGD step" if config.kind == "train" else "no_grad forward"
    found.append(Row("PyTorch", "peer", "torch", lambda: torch_row(config), torch_timed))
    return found


# --------------------------------------------------------------------------- memory


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process, in MB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


def memory_of_row(name: str, config: Config, backends: Sequence[str]) -> dict[str, float]:
    """Run one row in this (fresh) process: its peak resident set and what the row added."""
    row = next(r for r in rows(config, backends) if r.name == name)
    for module in ("numpy", "minidl"):
        __import__(module)
    before = _status_mb("VmRSS")
    prepared = row.prepare()
    prepared.first()
    prepared.block(2)
    peak = _status_mb("VmHWM")  # not ru_maxrss: Linux carries the parent's over exec
    return {"peak_mb": round(peak, 1), "added_mb": round(peak - before, 1)}


def measure_memory(name: str, config: Config, backends: Sequence[str]) -> dict[str, Any]:
    """``memory_of_row`` in a child process (a process's peak never goes down)."""
    command = [sys.executable, "-m", "benchmarks.vgg16", "--memory-row", name]
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
    config: Config, backends: Sequence[str], schedule: Schedule, memory: bool, peers: bool = True
) -> dict[str, Any]:
    """Prepare, time and (optionally) weigh every row of one configuration."""
    found = rows(config, backends, peers)
    results, ready = harness.prepare_rows(found, config.batch)
    harness.measure_rows(results, ready, schedule)
    keras = next((r for r in results if r.framework == "keras"), None)
    keras_s = _median(keras) if keras else None
    table = []
    for result in results:
        entry = result.to_dict()
        median = _median(result)
        entry["vs_keras"] = keras_s / median if keras_s and median else None
        if memory and result.status == "ok":
            entry["memory"] = measure_memory(result.name, config, backends)
        table.append(entry)
    return {"config": config.label, "rows": table}


def check_targets(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS/FAIL of every ratio target on the medians."""
    checks = []
    for block in report:
        kind = block["config"].split(":")[0]
        for entry in block["rows"]:
            goal = TARGETS.get((entry["framework"], kind))
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


def markdown(report: list[dict[str, Any]], checks: list[dict[str, Any]], command: str) -> str:
    """The tables (one per configuration) and the target checks."""
    lines = [f"# VGG16 benchmark\n\n`{command}`\n"]
    for block in report:
        lines += [
            f"## {block['config']}\n",
            "| row | median s | range s | vs Keras 3 | compile s | peak MB (row adds) "
            "| value step 1 / 2 | note |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for e in block["rows"]:
            stats, memory = e["stats"], e.get("memory") or {}
            median = f"{stats['median_s']:.3f}" if stats else e["status"]
            spread = f"{stats['min_s']:.3f}..{stats['max_s']:.3f}" if stats else ""
            ratio = f"{e['vs_keras']:.2f}x" if e.get("vs_keras") else ""
            compile_s = f"{e['compile_s']:.1f}" if e["compile_s"] is not None else ""
            peak = (
                f"{memory['peak_mb']:.0f} ({memory['added_mb']:.0f})" if "peak_mb" in memory else ""
            )
            values = (
                f"{e['first_loss']:.4f} / {e['second_loss']:.4f}"
                if e["first_loss"] is not None
                else ""
            )
            lines.append(
                f"| {e['name']} | {median} | {spread} | {ratio} | {compile_s} | {peak} "
                f"| {values} | {e['note']} |"
            )
        lines.append("")
    lines += ["## Targets (medians)\n", "| configuration | row | target | ratio | result |"]
    lines.append("|---|---|---|---:|---|")
    for c in checks:
        ratio = f"{c['ratio']:.2f}x" if c["ratio"] else "n/a"
        lines.append(
            f"| {c['config']} | {c['row']} | {c['target']} | {ratio} "
            f"| {'PASS' if c['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vgg16")
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 5")
    parser.add_argument(
        "--only",
        type=lambda text: tuple(Config.parse(t) for t in text.split(",") if t.strip()),
        default=CONFIGS,
        help="configurations, e.g. train:8x112,predict:1x224 (default: all four)",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write ``vgg16.json`` / ``vgg16.md``; print the markdown."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.memory_row:
        try:
            print(json.dumps(memory_of_row(args.memory_row, args.only[0], args.backends)))
        except Skip as reason:
            print(json.dumps({"error": str(reason)}))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    schedule = Schedule(steps_per_block=1, repeats=3 if args.quick else 5, pause_s=0.1)
    report = [
        run_config(c, args.backends, schedule, not args.no_memory, not args.no_peers)
        for c in args.only
    ]
    checks = check_targets(report)
    command = "python -m benchmarks.vgg16" + (" " + " ".join(sys.argv[1:]) if argv is None else "")
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
    (args.out / "vgg16.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    text = markdown(report, checks, command)
    (args.out / "vgg16.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
