"""Reproduce the CPU/GPU comparisons of the Theano paper (SciPy 2010) with minidl and its peers.

Usage::

    python -m benchmarks.theano_paper --quick            # everything, about 2 minutes
    python -m benchmarks.theano_paper                    # full run (more rounds, XLA rows ...)
    python -m benchmarks.theano_paper --only mlp --backends numpy --dtype float64

Writes ``latest.json`` (every number, with the machine), ``latest.md`` (tables and the
PASS/FAIL targets) and ``fig5_mlp.png`` / ``fig6_convlarge.png`` / ``fig7_elemwise.png`` to
``--out`` (default ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import charts, elemwise_suite, environment, paper, reporting, suites, targets
from benchmarks.tasks import ELEMWISE, FULL, QUICK, TINY

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
TASKS = ("mlp", "conv", "elemwise")
BACKENDS = ("numpy", "theano", "tensorflow")


def _csv(choices: Sequence[str]):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
        unknown = [t for t in items if t not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {', '.join(choices)}. Received: {text!r}"
            )
        return items

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.theano_paper", description=__doc__.split("\n\n")[0]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer rounds and sizes (~2 min)")
    size.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests only
    parser.add_argument(
        "--only",
        type=_csv(TASKS),
        default=TASKS,
        help="tasks to run: mlp,conv,elemwise (default: all)",
    )
    parser.add_argument(
        "--backends",
        type=_csv(BACKENDS),
        default=BACKENDS,
        help="minidl backends (and their raw baselines) to run (default: all)",
    )
    parser.add_argument("--device", choices=("cpu", "gpu", "all"), default="cpu")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="float32 (default) or float64 as in the paper's CPU runs",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for every BLAS/OpenMP/torch/TF/Numba pool: 1 (default) as in the paper; "
        "0 leaves each library its own default (all cores)",
    )
    parser.add_argument(
        "--no-peers", dest="peers", action="store_false", help="skip PyTorch, Keras 3 and numexpr"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--no-charts", dest="charts", action="store_false")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be 0 (library defaults) or more. Received: {args.threads}")
    return args


def resolve_devices(device: str, notes: list[str]) -> tuple[str, ...]:
    """The devices to run on; a GPU request without a GPU becomes a note (or nothing)."""
    if device == "cpu":
        return ("cpu",)
    found = environment.gpu_inventory()
    if not found:
        notes.append(
            "no GPU found (checked torch.cuda, TensorFlow, CuPy and JAX): GPU rows skipped"
        )
        return ("cpu",) if device == "all" else ()
    notes.append("GPU found: " + "; ".join(f"{k}: {v}" for k, v in found.items()))
    return ("cpu", "gpu") if device == "all" else ("gpu",)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected tasks, print the markdown report and write all outputs."""
    args = parse_args(argv)
    if args.verbose:
        logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("minidl").setLevel(logging.INFO)
    environment.limit_threads(args.threads or None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    load_before = os.getloadavg()
    notes: list[str] = []
    devices = resolve_devices(args.device, notes)
    if not devices:
        print("no GPU found (checked torch.cuda, TensorFlow, CuPy and JAX); nothing to run.")
        return 0
    plan = TINY if args.smoke else QUICK if args.quick else FULL
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    opts = suites.Options(
        args.backends, devices, args.dtype, plan, peers=args.peers, variants=mode == "full"
    )
    log = logging.getLogger("minidl.benchmarks")
    results: list[suites.TaskResult] = []
    if "mlp" in args.only:
        log.info("Fig. 5 MLP")
        results.append(suites.run_mlp(opts))
    if "conv" in args.only:
        log.info("Fig. 6 ConvLarge, batches %s", plan.conv_batches)
        results.extend(suites.run_conv(opts))
    if "elemwise" in args.only and "cpu" in devices:
        for expression in ELEMWISE:
            log.info("Fig. 7 %s", expression)
            results.extend(elemwise_suite.run_elemwise(opts, expression))
    checks = targets.evaluate(results, args.dtype)
    machine = environment.machine()
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python -m benchmarks.theano_paper " + " ".join(argv or sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "threads": environment.thread_report(),
        "load_average_1_5_15min": {"start": load_before, "end": os.getloadavg()},
        "settings": {
            "mode": mode,
            "dtype": args.dtype,
            "devices": list(devices),
            "backends": list(args.backends),
            "tasks": list(args.only),
            "peers": args.peers,
            "threads": args.threads,
        },
        "method": reporting.METHOD,
        "notes": notes,
        "paper": {
            "citation": paper.CITATION,
            "hardware": paper.HARDWARE,
            "mlp": paper.MLP,
            "conv": paper.CONV,
            "elemwise": paper.ELEMWISE_NOTE,
        },
        "tasks": [t.to_dict() for t in results],
        "targets": [c.to_dict() for c in checks],
    }
    if args.charts and charts.available():
        threads = {0: "default threads", 1: "1 thread each"}.get(
            args.threads, f"{args.threads} threads each"
        )
        short = f"{machine['cpu']}, {machine['cores']} cores, {threads}"
        payload["charts"] = charts.write_charts(args.out, results, short)
    elif args.charts:
        notes.append("matplotlib is not installed: charts skipped (pip install matplotlib)")
    payload["wall_s"] = time.perf_counter() - started
    reporting.write_json(args.out / "latest.json", payload)
    text = reporting.markdown(payload, results, checks)
    (args.out / "latest.md").write_text(text + "\n")
    print(text)
    print(
        f"\nWrote {args.out / 'latest.json'} and {args.out / 'latest.md'} "
        f"in {payload['wall_s']:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
