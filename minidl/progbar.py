"""A text progress bar with ETA and running averages, written to ``sys.stdout``.

On a terminal the bar is redrawn in place (``\\r``) as batches finish; when stdout is a file
or a pipe only the final line of each bar is printed, so logs stay readable. ``fit`` draws its
bars through the ``ProgbarLogger`` callback defined here.

>>> import io, contextlib
>>> out = io.StringIO()
>>> with contextlib.redirect_stdout(out):
...     bar = Progbar(4)
...     bar.update(2, [("loss", 1.0)])
...     bar.update(4, [("loss", 0.5)], finalize=True)
>>> "4/4 [==============================]" in out.getvalue() and "loss: 0.7500" in out.getvalue()
True
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from minidl.callbacks import Callback


def stdout_is_interactive() -> bool:
    """True when ``sys.stdout`` is a terminal or a notebook, where ``\\r`` redraws a line."""
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except ValueError:  # a closed stream
        return False
    return "ipykernel" in sys.modules


def format_duration(seconds: float) -> str:
    """``"5s"``, ``"2:05"`` or ``"1:02:05"`` for an ETA."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def format_value(value: float) -> str:
    """Four decimals, or scientific notation for tiny non-zero numbers."""
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.4e}"
    return f"{value:.4f}"


class Progbar:
    """Progress bar over ``target`` units (samples or steps; ``None`` when unknown).

    Args:
        target: total number of units, or ``None`` for an open-ended bar.
        width: number of characters of the bar itself.
        verbose: 1 draws the bar, 2 prints one summary line when finalized, 0 prints nothing.
        interval: minimum seconds between two redraws on a terminal.
        stateful_metrics: names whose latest value is shown as is instead of averaged.
        unit_name: what one unit is called in the per-unit time (``"step"``, ``"sample"``).
    """

    def __init__(
        self,
        target: int | None,
        width: int = 30,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = set(stateful_metrics or ())
        self.unit_name = unit_name
        self.dynamic = stdout_is_interactive()
        self._sums: dict[str, list[float]] = {}  # name -> [weighted sum, weight]
        self._order: list[str] = []
        self._seen = 0
        self._start = time.time()
        self._last_draw = 0.0
        self._drawn_width = 0
        self._finished = False

    def update(
        self,
        current: int,
        values: Sequence[tuple[str, float]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Record progress up to ``current`` units with this batch's ``values``."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        weight = max(current - self._seen, 1)
        for name, value in values or ():
            if name not in self._sums:
                self._order.append(name)
                self._sums[name] = [0.0, 0.0]
            if name in self.stateful_metrics:
                self._sums[name] = [float(value), 1.0]
            else:
                self._sums[name][0] += float(value) * weight
                self._sums[name][1] += weight
        self._seen = current
        if self.verbose == 0 or self._finished:
            return
        now = time.time()
        if finalize:
            self._finished = True
            line = self._final_line(current, now)
            if self.dynamic and self.verbose == 1:
                sys.stdout.write("\r" + line.ljust(self._drawn_width) + "\n")
            else:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
        elif self.dynamic and self.verbose == 1 and now - self._last_draw >= self.interval:
            self._last_draw = now
            line = self._live_line(current, now)
            sys.stdout.write("\r" + line.ljust(self._drawn_width))
            sys.stdout.flush()
            self._drawn_width = len(line)

    def add(self, n: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        """Advance by ``n`` units."""
        self.update(self._seen + n, values)

    def averages(self) -> dict[str, float]:
        """Current displayed value of every metric."""
        return {name: s / max(w, 1e-12) for name, (s, w) in self._sums.items()}

    # ------------------------------------------------------------------ drawing
    def _bar(self, current: int) -> str:
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        done = int(self.width * min(current / max(self.target, 1), 1.0))
        arrow = "=" * max(done - 1, 0) + (">" if current < self.target else "=") if done else ""
        return f"{current:{digits}d}/{self.target} [{arrow}{'.' * (self.width - len(arrow))}]"

    def _metric_text(self) -> str:
        averages = self.averages()
        return "".join(f" - {name}: {format_value(averages[name])}" for name in self._order)

    def _live_line(self, current: int, now: float) -> str:
        elapsed = now - self._start
        if self.target is not None and current:
            eta = elapsed / current * (self.target - current)
            timing = f" - ETA: {format_duration(eta)}"
        else:
            timing = f" - {format_duration(elapsed)}"
        return self._bar(current) + timing + self._metric_text()

    def _final_line(self, current: int, now: float) -> str:
        elapsed = now - self._start
        per_unit = elapsed / max(current, 1)
        if per_unit >= 1:
            rate = f"{per_unit:.0f}s/{self.unit_name}"
        elif per_unit >= 1e-3:
            rate = f"{per_unit * 1e3:.0f}ms/{self.unit_name}"
        else:
            rate = f"{per_unit * 1e6:.0f}us/{self.unit_name}"
        timing = f" - {format_duration(elapsed)} {rate}"
        if self.verbose == 2:
            return timing + self._metric_text()
        return self._bar(current) + timing + self._metric_text()


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a progress bar (verbose 1) or one line per epoch (verbose 2)."""

    def __init__(self, verbose: int = 1) -> None:
        super().__init__()
        self.verbose = verbose
        self.progbar: Progbar | None = None
        self.seen = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        print(f"Epoch {epoch + 1}/{self.params['epochs']}")
        counts_samples = self.params.get("samples") is not None
        target = self.params["samples"] if counts_samples else self.params.get("steps")
        self.progbar = Progbar(
            target, verbose=self.verbose, unit_name="sample" if counts_samples else "step"
        )
        self.seen = 0

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.seen += logs.get("size", 1) if self.params.get("samples") is not None else 1
        values = [(name, logs[name]) for name in self.params["metrics"] if name in logs]
        assert self.progbar is not None
        # never finalized here: the epoch's line is completed in on_epoch_end with val_ values
        self.progbar.update(self.seen, values, finalize=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        assert self.progbar is not None
        names = [n for n in logs if n.startswith("val_")]
        self.progbar.stateful_metrics.update(names)
        self.progbar.update(self.seen, [(n, logs[n]) for n in names], finalize=True)
