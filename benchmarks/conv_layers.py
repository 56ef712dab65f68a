"""Each convolution kernel on VGG16's and the U-Net's 3x3 layers, as ratios against im2col.

For every layer shape and every kind of call (forward with a bias-and-relu epilogue, input
gradient, kernel gradient) the rows time ``backends.conv_kernels`` with one kernel forced:
im2col (the baseline), Winograd F(2x2, 3x3), stacked rows, and the default choice
(``conv_kernels.kernel_for``). The kernels run as in a compiled step: float32, their own
threads, BLAS held to one thread. Rows are interleaved round by round in one process; the
report gives median milliseconds and the ratio im2col / row (above 1: faster than im2col);
"-" where a kernel does not take that call (stacked rows leave kernel gradients to im2col).

    python -m benchmarks.conv_layers --rounds 7 --batch 8
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

# (network, side, in channels, out channels) at the README's sizes (VGG16 112, U-Net 128)
LAYERS = (
    ("VGG16", 112, 64, 64),
    ("VGG16", 56, 64, 128),
    ("VGG16", 56, 128, 128),
    ("VGG16", 28, 256, 256),
    ("VGG16", 14, 512, 512),
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
    if kernel != "default":
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


def _calls(batch: int, side: int, c: int, k: int) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(side + c + k)
    x = rng.standard_normal((batch, side, side, c), dtype=np.float32)
    kernel = rng.standard_normal((3, 3, c, k), dtype=np.float32) * np.float32(0.05)
    grad = rng.standard_normal((batch, side, side, k), dtype=np.float32)
    bias = np.full(k, 0.1, dtype=np.float32)
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


def measure(batch: int, rounds: int, layers: Sequence[tuple] = LAYERS) -> list[dict[str, Any]]:
    """One entry per layer and kind: median ms per kernel and the default's choice."""
    entries = []
    pads = ((1, 1), (1, 1))
    with im2col.single_threaded_blas():
        for network, side, c, k in layers:
            calls, shape = _calls(batch, side, c, k), (3, 3, c, k)

            def choice(kind: str, out: tuple = (batch, side, side), shape: tuple = shape) -> str:
                return conv_kernels.kernel_for(kind, out, shape, (1, 1), pads, "float32")

            for kind in KINDS:
                runs = []  # the kernels that can take this call (stacked rows: no kernel gradient)
                for name in KERNELS:
                    with forced(name):
                        if name == "default" or choice(kind) == name:
                            runs.append(name)
                            calls[kind]()  # warm-up: work arrays, first-touch pages
                times: dict[str, list[float]] = {name: [] for name in runs}
                for round_index in range(rounds):
                    shift = round_index % len(runs)
                    for name in runs[shift:] + runs[:shift]:
                        with forced(name):
                            start = time.perf_counter()
                            calls[kind]()
                            times[name].append(time.perf_counter() - start)
                entries.append(
                    {
                        "layer": f"{network} {side}x{side}x{c}->{k}",
                        "kind": kind,
                        "default": choice(kind),
                        "ms": {n: statistics.median(t) * 1000 for n, t in times.items()},
                    }
                )
    return entries


def markdown(entries: list[dict[str, Any]], batch: int, rounds: int) -> str:
    """The report: one row per layer and kind, each kernel's ms and ratio to im2col."""
    lines = [
        f"batch {batch}, float32, medians of {rounds} interleaved rounds; "
        "ratio = im2col's time / the kernel's\n",
        "| layer | call | im2col ms | Winograd | stacked rows | default (its choice) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for e in entries:
        ms = e["ms"]

        def cell(name: str, ms: dict = ms) -> str:
            if name not in ms:
                return "-"
            return f"{ms[name]:.1f} ms ({ms['im2col'] / ms[name]:.2f}x)"

        lines.append(
            f"| {e['layer']} | {e['kind']} | {ms['im2col']:.1f} | {cell('winograd')} | "
            f"{cell('rowstack')} | {cell('default')} ({e['default']}) |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv_layers")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print(markdown(measure(args.batch, args.rounds), args.batch, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
