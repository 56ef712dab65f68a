"""Callbacks that keep the workers of a data-parallel ``fit`` in agreement.

``StepSync`` runs first: before a step it tells the strategy how many real samples this worker
holds; after it, it replaces the worker's loss and metrics by their means over the global
batch (so the progress bar, ``History``, ``EarlyStopping`` and ``ModelCheckpoint`` see the
same numbers on every worker). ``AgreeOnStop`` runs last: a worker stops only when all do, and
all do when any one asks. Callbacks that write files run on the chief alone.
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


class StepSync(Callback):
    """Sets the strategy's sample count before each step and makes the step's logs global.

    Args:
        collectives: the strategy's timed collectives.
        names: the model's ``metrics_names``.
        count_of: ``(batch_index, batch_logs) -> samples this worker holds in the batch``.
        set_count: hands the count to the strategy's gradient all-reduce.
    """

    def __init__(
        self,
        collectives: Any,
        names: Sequence[str],
        count_of: Callable[[int, dict], int],
        set_count: Callable[[int], None],
    ) -> None:
        super().__init__()
        self.collectives = collectives
        self.names = list(names)
        self.count_of = count_of
        self.set_count = set_count
        self._sums = np.zeros(len(self.names))
        self._seen = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._sums = np.zeros(len(self.names))
        self._seen = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.set_count(self.count_of(batch, logs or {}))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        count = float(self.count_of(batch, logs))
        local = np.array([logs[name] for name in self.names], dtype="float64")
        weighted = local * count if count > 0 else np.zeros_like(local)
        total = self.collectives.allreduce_sum(
            np.append(weighted, count), what="the all-reduce of a step's loss and metrics"
        )
        seen = total[-1]
        values = total[:-1] / max(seen, 1.0)
        logs.update({name: float(v) for name, v in zip(self.names, values)})
        logs["size"] = int(seen)
        self._sums += values * seen
        self._seen += seen

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and self._seen:
            values = self._sums / self._seen
            logs.update({name: float(v) for name, v in zip(self.names, values)})


class AgreeOnStop(Callback):
    """Every worker stops training when any worker's callbacks ask it to."""

    def __init__(self, collectives: Any) -> None:
        super().__init__()
        self.collectives = collectives

    def _agree(self) -> None:
        flag = np.array([1.0 if self.model.stop_training else 0.0])
        agreed = self.collectives.allreduce_max(flag, what="the agreement on stopping")
        self.model.stop_training = bool(agreed[0])

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._agree()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._agree()


class ChiefProgbar(ProgbarLogger):
    """The chief's progress bar, counting the samples of every worker."""

    def __init__(self, verbose: int, num_samples: int | None) -> None:
        super().__init__(verbose)
        self.num_samples = num_samples

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params({**params, "samples": self.num_samples, "verbose": self.verbose})
