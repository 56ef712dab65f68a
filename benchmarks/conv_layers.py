"""Each convolution kernel on VGG16's and the U-Net's 3x3 layers, as ratios against im2col.

For every layer shape and every kind of call (forward with a bias-and-relu epilogue, input
gradient, kernel gradient) the rows time ``backends.conv_kernels`` with one kernel forced:
im2col (the baseline), Winograd F(2x2, 3x3), stacked rows, and the default choice
(``conv_kernels.kernel_for``). The kernels run as in a compiled step: float32, their own
threads, BLAS held to one thread. Rows are interleaved round by round in one process; the
report gives median milliseconds and the ratio im2col / row (above 1: faster than im2col);
"-" where a kernel does not take that call (stacked rows leave kernel gradients to im2col).
``--tensorflow`` adds TensorFlow's own op for each call (what Keras 3 runs: oneDNN on x86),
interleaved with the rest, and its time over the default's (above 1: minidl is faster).
``--floor`` adds each layer's BLAS floor: its forward multiply-adds as bare BLAS products, the
im2col shape or Winograd's, whichever is faster (``blas_floor``): no kernel made of those
products and NumPy passes can beat it.

    python -m benchmarks.conv_layers --rounds 7 --batch 8 --tensorflow --floor
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minidl.backends import conv_kernels, im2col

from .environment import import_quietly

# (network, side, in channels, out channels) at the README's sizes (VGG16 112, U-Net 128)
LAYERS = (
    ("VGG16", 112, 64, 64),
    ("VGG16", 56, 64, 128),
    ("VGG16", 56, 128, 128),
    ("VGG16", 28, 256, 256),
    ("VGG16", 14, 512, 512),
    ("VGG16", 7, 512, 512),
    ("U-Net", 128, 32, 32),
    ("U-Net", 64, 64, 64),
    ("U-Net", 32, 128, 128),
)
KERNELS = ("im2col", "winograd", "rowstack", "default")
KINDS = ("forward", "input_gradient", "kernel_gradient")


@contextlib.contextmanager
def forced(kernel: str) -> Iterator[None]:
    """``conv_kernels`` sending every 3x3 stride-1 call to ``kernel`` (its defaults for
    ``"default"``)."""
    names = (
        "ROWSTACK",
        "WINOGRAD",
        "ROWSTACK_MIN_CHANNELS",
        "ROWSTACK_MAX_CHANNELS",
        "MIN_TILES",
        "FORWARD_MIN_CHANNELS",
        "INPUT_GRADIENT_MIN_CHANNELS",
        "KERNEL_GRADIENT_MIN_CHANNELS",
        "KERNEL_GRADIENT_MIN_TILES",
    )
    saved = {name: getattr(conv_kernels, name) for name in names}
    if kernel not in ("default", "tensorflow"):
        conv_kernels.ROWSTACK = kernel == "rowstack"
        conv_kernels.WINOGRAD = kernel == "winograd"
        conv_kernels.ROWSTACK_MIN_CHANNELS, conv_kernels.ROWSTACK_MAX_CHANNELS = 0, 2**31
        for name in names[4:]:
            setattr(conv_kernels, name, 0)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(conv_kernels, name, value)


def _arrays(batch: int, side: int, c: int, k: int) -> tuple[Any, Any, Any, Any]:
    """One layer's input, kernel, output gradient and bias (float32, seeded by the shape)."""
    rng = np.random.default_rng(side + c + k)
    x = rng.standard_normal((batch, side, side, c), dtype=np.float32)
    kernel = rng.standard_normal((3, 3, c, k), dtype=np.float32) * np.float32(0.05)
    grad = rng.standard_normal((batch, side, side, k), dtype=np.float32)
    return x, kernel, grad, np.full(k, 0.1, dtype=np.float32)


def _calls(arrays: tuple) -> dict[str, Callable[[], Any]]:
    x, kernel, grad, bias = arrays
    pads, scratch = ((1, 1), (1, 1)), conv_kernels.SCRATCH

    def bias_relu(block: Any) -> None:
        block += bias
        np.maximum(block, 0, out=block)

    return {
        "forward": lambda: conv_kernels.conv2d_forward(
            x, kernel, (1, 1), pads, scratch, epilogue=bias_relu
        ),
        "input_gradient": lambda: conv_kernels.conv2d_input_gradient(
            grad, kernel, x.shape, (1, 1), pads, scratch
        ),
        "kernel_gradient": lambda: conv_kernels.conv2d_kernel_gradient(
            x, grad, kernel.shape, (1, 1), pads, scratch
        ),
    }


def _tensorflow_calls(arrays: tuple) -> dict[str, Callable[[], Any]]:
    """TensorFlow's own ops for the same calls (oneDNN on x86 builds; its default threads):
    the ``tf.nn.conv2d`` + bias + relu that Keras 3 runs, and the two gradient ops."""
    tf = import_quietly("tensorflow")
    x, kernel, grad, bias = (tf.constant(a) for a in arrays)
    same = {"strides": [1, 1, 1, 1], "padding": "SAME"}
    forward = tf.function(lambda: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, **same), bias)))
    input_gradient = tf.function(
        lambda: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=list(x.shape), filter=kernel, out_backprop=grad, **same
        )
    )
    kernel_gradient = tf.function(
        lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=list(kernel.shape), out_backprop=grad, **same
        )
    )
    return {
        "forward": forward,
        "input_gradient": input_gradient,
        "kernel_gradient": kernel_gradient,
    }


def blas_floor(batch: int, side: int, c: int, k: int, rounds: int) -> float:
    """Median ms of the fastest way BLAS alone does a 3x3 layer's forward multiply-adds: im2col's
    one ``(pixels, 9 c) @ (9 c, k)`` product or Winograd's 16 ``(tiles, c) @ (c, k)`` products,
    on BLAS's own threads, with no copy or transform. No kernel built on those products beats it.
    """
    rng = np.random.default_rng(0)
    pixels, tiles = batch * side * side, batch * ((side + 1) // 2) ** 2
    columns = rng.standard_normal((pixels, 9 * c), dtype=np.float32)
    matrix = rng.standard_normal((9 * c, k), dtype=np.float32)
    products = np.empty((pixels, k), dtype=np.float32)
    v = rng.standard_normal((16, tiles, c), dtype=np.float32)
    u = rng.standard_normal((16, c, k), dtype=np.float32)
    m = np.empty((16, tiles, k), dtype=np.float32)
    calls = (
        lambda: np.matmul(columns, matrix, out=products),
        lambda: np.matmul(v, u, out=m),
    )
    times: list[list[float]] = [[], []]
    for call in calls:
        call()  # warm-up: BLAS threads, first-touch pages
    for _ in range(rounds):
        for index, call in enumerate(calls):
            start = time.perf_counter()
            call()
            times[index].append(time.perf_counter() - start)
    return min(statistics.median(t) for t in times) * 1000


def measure(
    batch: int,
    rounds: int,
    layers: Sequence[tuple] = LAYERS,
    tensorflow: bool = False,
    floor: bool = False,
) -> list[dict[str, Any]]:
    """One entry per layer and kind: median ms per kernel and the default's choice; with
    ``tensorflow``, TensorFlow's op for the same call as one more row (``"tensorflow"``); with
    ``floor``, the layer's ``blas_floor`` (``"floor"``)."""
    entries: list[dict[str, Any]] = []
    pads = ((1, 1), (1, 1))
    for network, side, c, k in layers:
        first = len(entries)
        with im2col.single_threaded_blas():
            arrays, shape = _arrays(batch, side, c, k), (3, 3, c, k)
            ours = _calls(arrays)
            calls = {name: ours for name in KERNELS}
            if tensorflow:
                calls["tensorflow"] = _tensorflow_calls(arrays)

            def choice(kind: str, out: tuple = (batch, side, side), shape: tuple = shape) -> str:
                return conv_kernels.kernel_for(kind, out, shape, (1, 1), pads, "float32")

            for kind in KINDS:
                runs = []  # the kernels that can take this call (stacked rows: no kernel gradient)
                for name in calls:
                    with forced(name):
                        if name in ("default", "tensorflow") or choice(kind) == name:
                            runs.append(name)
                            calls[name][kind]()  # warm-up: work arrays, first-touch, tracing
                times: dict[str, list[float]] = {name: [] for name in runs}
                for round_index in range(rounds):
                    shift = round_index % len(runs)
                    for name in runs[shift:] + runs[:shift]:
                        with forced(name):
                            start = time.perf_counter()
                            calls[name][kind]()
                            times[name].append(time.perf_counter() - start)
                entries.append(
                    {
                        "layer": f"{network} {side}x{side}x{c}->{k}",
                        "kind": kind,
                        "default": choice(kind),
                        "ms": {n: statistics.median(t) * 1000 for n, t in times.items()},
                    }
                )
        if floor:
            least = blas_floor(batch, side, c, k, rounds)
            for entry in entries[first:]:
                entry["ms"]["floor"] = least
    return entries


def markdown(entries: list[dict[str, Any]], batch: int, rounds: int) -> str:
    """The report: one row per layer and kind, each kernel's ms and ratio to im2col; where
    measured, TensorFlow's ms with its time over the default's (above 1: minidl is faster),
    and the layer's BLAS floor."""
    peer = any("tensorflow" in e["ms"] for e in entries)
    floor = any("floor" in e["ms"] for e in entries)
    notes = ["ratio = im2col's time / the kernel's"]
    header = "| layer | call | im2col ms | Winograd | stacked rows | default (its choice) |"
    if peer:
        notes.append("TensorFlow: its op's time / the default's")
        header += " TensorFlow |"
    if floor:
        notes.append("BLAS floor: the forward's products alone (`blas_floor`)")
        header += " BLAS floor ms |"
    lines = [
        f"batch {batch}, float32, medians of {rounds} interleaved rounds; " + "; ".join(notes),
        "",
        header,
        "|---|---|---:|---:|---:|---:|" + "---:|" * (peer + floor),
    ]
    for e in entries:
        ms = e["ms"]

        def cell(name: str, ms: dict = ms) -> str:
            if name not in ms:
                return "-"
            return f"{ms[name]:.1f} ms ({ms['im2col'] / ms[name]:.2f}x)"

        row = (
            f"| {e['layer']} | {e['kind']} | {ms['im2col']:.1f} | {cell('winograd')} | "
            f"{cell('rowstack')} | {cell('default')} ({e['default']}) |"
        )
        if peer:
            tf_ms = ms.get("tensorflow")
            row += " - |" if tf_ms is None else f" {tf_ms:.1f} ms ({tf_ms / ms['default']:.2f}x) |"
        if floor:
            row += " - |" if "floor" not in ms else f" {ms['floor']:.1f} |"
        lines.append(row)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv_layers")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--tensorflow",
        action="store_true",
        help="also time TensorFlow's own op for every call (needs the [tensorflow] extra)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time each layer's multiply-adds as bare BLAS products (blas_floor)",
    )
    args = parser.parse_args(argv)
    entries = measure(args.batch, args.rounds, tensorflow=args.tensorflow, floor=args.floor)
    print(markdown(entries, args.batch, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
