"""``MirroredStrategy`` and ``MultiWorkerMirroredStrategy``: tf.distribute (tensorflow backend).

The train step runs on every replica (device) through ``tf.distribute``: each replica takes a
consecutive part of the global batch, the replicas' gradients are summed by the replica
context's all-reduce with weights equal to their share of the batch, and the result equals
one process training on the whole batch. The TensorFlow side lives in the backend
(``minidl.backends.tensorflow.distribute``); this module only asks the current backend for it.

With ``MultiWorkerMirroredStrategy`` (``TF_CONFIG`` names the workers) every worker gives
``fit`` the same arrays; the chief's epoch order is sent to all, each replica takes its own
part of each global batch, and only the chief shows progress and writes files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.distribute import sync
from minidl.distribute.context import Strategy


def _backend_distribute(owner: str) -> Any:
    """The current backend's tf.distribute helpers, or a clear error on other backends."""
    try:
        return importlib.import_module(f"{K.current().__name__}.distribute")
    except ModuleNotFoundError:
        raise ValueError(
            f"{owner} wraps tf.distribute and needs the tensorflow backend "
            f"(MINIDL_BACKEND=tensorflow); on the {K.name()!r} backend use MPIStrategy. "
            f"Received: backend {K.name()!r}"
        ) from None


def logical_cpu_devices(count: int) -> list[str]:
    """Split the CPU into ``count`` TensorFlow devices (to try a strategy without GPUs).

    Call it before any model is built; returns the device names for ``MirroredStrategy``.
    """
    return _backend_distribute("logical_cpu_devices").logical_cpus(int(count))


class MirroredStrategy(Strategy):
    """Synchronous data parallelism over the devices of one machine (``tf.distribute``).

    Args:
        devices: device names such as ``["/gpu:0", "/gpu:1"]``; all GPUs (else the CPU) when
            None.
    """

    _kind = "mirrored"

    def __init__(self, devices: Sequence[str] | None = None) -> None:
        self._backend = _backend_distribute(type(self).__name__)
        self.tf_strategy = self._backend.make_strategy(self._kind, devices)
        self.rank, self.size, _ = self._backend.worker_info(self.tf_strategy)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} replicas={self.num_replicas_in_sync}>"

    @property
    def num_replicas_in_sync(self) -> int:
        """Replicas taking part in one step (devices of every worker)."""
        return int(self.tf_strategy.num_replicas_in_sync)

    def reduce_gradients(self, grads: Sequence[Any], params: Sequence[Any]) -> list[Any]:
        """Inside a replica: the gradients of the whole global batch."""
        return list(self._backend.all_reduce_gradients(list(grads)))

    def compile_step(
        self, fn: Callable[..., Any], input_specs: Sequence[tuple], name: str | None = None
    ) -> Callable[..., list[Any]]:
        """Compile the train step to run on every replica."""
        return self._backend.replicated_function(self.tf_strategy, fn, input_specs, name)

    def fit(self, model: Any, fit_loop: Callable[..., Any], x: Any, y: Any, options: Any) -> Any:
        """One worker: the engine's loop as it is (the step splits each batch itself)."""
        if self.size == 1:
            return fit_loop(model, x, y, options)
        return self._fit_multi_worker(model, fit_loop, x, y, options)

    def _fit_multi_worker(
        self, model: Any, fit_loop: Callable[..., Any], x: Any, y: Any, options: Any
    ) -> Any:
        import dataclasses

        from minidl.distribute.sharding import GlobalBatchShards
        from minidl.engine.data_adapters import is_array_like

        if is_array_like(x) and options.shuffle:  # the same order on every worker
            if options.steps_per_epoch is not None:
                raise ValueError(
                    "With several workers, shuffled array data trains on whole epochs; leave "
                    f"`steps_per_epoch` unset. Received: steps_per_epoch={options.steps_per_epoch}"
                )
            from minidl.engine.data_adapters import split_validation

            x, y = np.asarray(x), np.asarray(y)
            sample_weight, validation_data = options.sample_weight, options.validation_data
            if options.validation_split and validation_data is None:
                (x, y, sample_weight), val = split_validation(
                    x, y, sample_weight, options.validation_split
                )
                validation_data = tuple(v for v in val if v is not None)
            num_samples = len(x)
            draw = lambda: self._backend.broadcast_from_chief(
                self.tf_strategy, np.random.permutation(num_samples).astype(np.int64)
            )
            batch_size = options.batch_size or 32
            x = GlobalBatchShards(x, y, sample_weight, batch_size, 0, 1, draw)
            y = None
            options = dataclasses.replace(
                options,
                batch_size=None,
                shuffle=False,
                sample_weight=None,
                validation_split=0.0,
                validation_data=validation_data,
            )
        callbacks = [
            c for c in options.callbacks or [] if sync.runs_on_this_worker(c, self.is_chief)
        ]
        verbose = options.verbose if self.is_chief else 0
        return fit_loop(
            model, x, y, dataclasses.replace(options, callbacks=callbacks, verbose=verbose)
        )


class MultiWorkerMirroredStrategy(MirroredStrategy):
    """Synchronous data parallelism over the devices of several workers (``TF_CONFIG``)."""

    _kind = "multi_worker"

    def __init__(self) -> None:
        super().__init__(None)
