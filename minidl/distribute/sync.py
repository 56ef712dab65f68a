"""Callbacks that keep the workers of a data-parallel ``fit`` in agreement.

``StepCounts`` runs first: before a step it tells the strategy how many real samples this
worker holds, and at the end of an epoch it puts the epoch's global means of the loss and
metrics into the logs (so ``History``, ``EarlyStopping`` and ``ModelCheckpoint`` see the same
numbers on every worker). ``StepAgreement`` runs after the user's callbacks, with one
all-reduce per step: it replaces the step's loss and metrics by their means over the global
batch (for the progress bar and the epoch means) and makes every worker stop when any one
asks. Batch-level callbacks before it see this worker's own values. Callbacks that write
files or print run on the chief alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl.callbacks import Callback, CSVLogger, ModelCheckpoint
from minidl.progbar import ProgbarLogger

CHIEF_ONLY_CALLBACKS: tuple[type, ...] = (ModelCheckpoint, CSVLogger, ProgbarLogger)
"""Callbacks run by the chief alone; give any other callback ``chief_only = True`` to join."""


def runs_on_this_worker(callback: Any, is_chief: bool) -> bool:
    """True unless ``callback`` writes files or prints and this worker is not the chief."""
    chief_only = isinstance(callback, CHIEF_ONLY_CALLBACKS) or getattr(
        callback, "chief_only", False
    )
    return is_chief or not chief_only


class EpochTotals:
    """Global loss and metric sums of the current epoch, shared by the two callbacks."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.reset()

    def reset(self) -> None:
        self.sums = np.zeros(len(self.names))
        self.seen = 0.0


class StepCounts(Callback):
    """First callback: the sample count of each step, the global epoch means at its end.

    Args:
        totals: the epoch's global sums, filled by ``StepAgreement``.
        count_of: ``(batch_index, batch_logs) -> samples this worker holds in the batch``.
        set_count: hands the count to the strategy's gradient all-reduce.
    """

    def __init__(
        self,
        totals: EpochTotals,
        count_of: Callable[[int, dict], int],
        set_count: Callable[[int], None],
    ) -> None:
        super().__init__()
        self.totals = totals
        self.count_of = count_of
        self.set_count = set_count

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.totals.reset()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.set_count(self.count_of(batch, logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and self.totals.seen:
            values = self.totals.sums / self.totals.seen
            logs.update({name: float(v) for name, v in zip(self.totals.names, values)})


class StepAgreement(Callback):
    """After the user's callbacks: global step logs and one stop decision, in one all-reduce."""

    def __init__(
        self, collectives: Any, totals: EpochTotals, count_of: Callable[[int, dict], int]
    ) -> None:
        super().__init__()
        self.collectives = collectives
        self.totals = totals
        self.count_of = count_of

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        count = float(self.count_of(batch, logs))
        local = np.array([logs[name] for name in self.totals.names], dtype="float64")
        weighted = local * count if count > 0 else np.zeros_like(local)
        stop = 1.0 if self.model.stop_training else 0.0
        total = self.collectives.allreduce_sum(
            np.concatenate([weighted, [count, stop]]),
            what="the all-reduce of a step's loss, metrics and stop flag",
        )
        seen = total[-2]
        values = total[:-2] / max(seen, 1.0)
        logs.update({name: float(v) for name, v in zip(self.totals.names, values)})
        logs["size"] = int(seen)
        self.totals.sums += values * seen
        self.totals.seen += seen
        self.model.stop_training = bool(total[-1] > 0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        flag = np.array([1.0 if self.model.stop_training else 0.0])
        agreed = self.collectives.allreduce_max(flag, what="the agreement on stopping")
        self.model.stop_training = bool(agreed[0])


class ChiefProgbar(ProgbarLogger):
    """The chief's progress bar, counting the samples of every worker."""

    def __init__(self, verbose: int, num_samples: int | None) -> None:
        super().__init__(verbose)
        self.num_samples = num_samples

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params({**params, "samples": self.num_samples, "verbose": self.verbose})
