"""tf.distribute under minidl's compiled steps: the train step runs once per replica.

``replicated_function`` compiles a train step that splits each global batch into one
consecutive part per replica (sizes differing by at most one), runs the step on every replica
with ``strategy.run``, sums the replicas' gradients weighted by their share of the batch with
the replica context's ``all_reduce`` (so the result is the gradient of the whole batch), and
sums the weighted losses and metrics with ``strategy.reduce``. Variables are single
``tf.Variable``s; every replica reads them, and the first replica of each worker writes the
update, after the all-reduce (so after every replica has read them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._runtime import tf
from .compile import CompiledStep, _graph_step, _normalize_spec

_trace = threading.local()  # the replica's share of the batch while its step is traced


def logical_cpus(count: int) -> list[str]:
    """Split the CPU into ``count`` logical devices (before TensorFlow runs any op)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu) or []
    if len(configured) != count:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
            )
        except RuntimeError:
            raise ValueError(
                f"TensorFlow has already started with {len(configured) or 1} CPU device(s); "
                f"ask for {count} logical CPUs before any model is built or step is run. "
                f"Received: count={count}"
            ) from None
    return [device.name for device in tf.config.list_logical_devices("CPU")][:count]


def make_strategy(kind: str, devices: Sequence[str] | None = None) -> Any:
    """A ``tf.distribute.MirroredStrategy`` (``"mirrored"``) or ``MultiWorkerMirroredStrategy``."""
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown tf.distribute strategy kind. Received: kind={kind!r}")


def worker_info(strategy: Any) -> tuple[int, int, int]:
    """``(worker index, number of workers, replicas per worker)`` of ``strategy``."""
    local_replicas = len(strategy.extended.worker_devices)
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1, local_replicas
    spec = resolver.cluster_spec().as_dict()
    workers = sum(len(spec.get(job, [])) for job in ("chief", "worker"))
    index = int(resolver.task_id or 0)
    if resolver.task_type == "worker" and "chief" in spec:
        index += len(spec["chief"])
    return index, workers, local_replicas


def all_reduce_gradients(grads: Sequence[Any]) -> list[Any]:
    """Inside a replica: the gradients of the whole global batch (weighted sum over replicas)."""
    context = tf.distribute.get_replica_context()
    share = getattr(_trace, "share", None)
    if context is None or share is None:
        raise RuntimeError(
            "all_reduce_gradients runs inside a step compiled by replicated_function. "
            "Received: a call outside one"
        )
    weighted = [tf.math.multiply_no_nan(g, tf.cast(share, g.dtype)) for g in grads]
    return context.all_reduce(tf.distribute.ReduceOp.SUM, weighted)


def _replica_part(inputs: Sequence[Any], index: int, replicas: int) -> tuple[Any, ...]:
    size = tf.shape(inputs[0])[0]
    start, stop = (size * index) // replicas, (size * (index + 1)) // replicas
    return tuple(x[start:stop] for x in inputs)


class ReplicatedStep(CompiledStep):
    """A train step run on every replica of a ``tf.distribute`` strategy (see the module)."""

    def __init__(
        self, strategy: Any, fn: Callable, input_specs: Sequence[tuple], name: str | None
    ) -> None:
        self.name = name or getattr(fn, "__name__", "step")
        self.specs = [_normalize_spec(spec, i) for i, spec in enumerate(input_specs)]
        self.xla = False
        _, _, local_replicas = worker_info(strategy)

        def replica_step(*inputs: Any) -> list[Any]:
            context = tf.distribute.get_replica_context()
            replica = tf.get_static_value(context.replica_id_in_sync_group)
            writes = replica is None or int(replica) % local_replicas == 0
            count = tf.cast(tf.shape(inputs[0])[0], tf.float32)
            share = count / tf.maximum(context.all_reduce(tf.distribute.ReduceOp.SUM, count), 1)
            _trace.share = share

            def first_writes(*arrays: Any) -> tuple[list, list]:
                outputs, updates = fn(*arrays)
                return outputs, list(updates) if writes else []

            try:
                outputs = _graph_step(first_writes, self.name)(*inputs)
            finally:
                _trace.share = None
            return [tf.math.multiply_no_nan(o, tf.cast(share, o.dtype)) for o in outputs]

        def step(*inputs: Any) -> list[Any]:
            parts = strategy.experimental_distribute_values_from_function(
                lambda ctx: _replica_part(
                    inputs, ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync
                )
            )
            results = strategy.run(replica_step, args=parts)
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, r, axis=None) for r in results]

        signature = [
            tf.TensorSpec(shape, tf.as_dtype(dtype), name=f"input_{i}")
            for i, (shape, dtype) in enumerate(self.specs)
        ]
        traced = tf.function(step, input_signature=signature, autograph=False)
        self.concrete = traced.get_concrete_function()
        self._fixed_dims = [
            [(axis, size) for axis, size in enumerate(shape) if size is not None]
            for shape, _ in self.specs
        ]


def replicated_function(
    strategy: Any, fn: Callable, input_specs: Sequence[tuple], name: str | None = None
) -> ReplicatedStep:
    """Compile ``fn`` (a train step, as for ``function``) to run on every replica."""
    return ReplicatedStep(strategy, fn, input_specs, name)


def broadcast_from_chief(strategy: Any, array: Any) -> Any:
    """The first replica's ``array`` on every worker (an all-reduce where only it adds)."""
    import numpy as np

    source = np.asarray(array)
    value = tf.constant(source.astype(np.float64))

    def replica_fn() -> Any:
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        return context.all_reduce(
            tf.distribute.ReduceOp.SUM, tf.where(first, value, tf.zeros_like(value))
        )

    result = strategy.experimental_local_results(strategy.run(replica_fn))[0]
    return np.asarray(result.numpy()).astype(source.dtype)
