"""Training past one process: data-parallel strategies (MPI on every backend, tf.distribute).

>>> from minidl.distribute import shard_indices
>>> shard_indices(5, rank=0, size=2).tolist()
[0, 1, 2]

Build and compile inside a strategy's scope; ``fit`` takes the global batch size::

    strategy = MPIStrategy()            # launched with: mpiexec -n 4 python train.py
    with strategy.scope():
        model = build()
        model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=64)      # 16 samples per worker and step
"""

from minidl.distribute.collectives import DEFAULT_TIMEOUT, WorkerTimeoutError
from minidl.distribute.context import Strategy, current_strategy
from minidl.distribute.mirrored import (
    MirroredStrategy,
    MultiWorkerMirroredStrategy,
    logical_cpu_devices,
)
from minidl.distribute.mpi import MPIStrategy
from minidl.distribute.sharding import shard_indices, split_sizes

__all__ = [
    "DEFAULT_TIMEOUT",
    "MPIStrategy",
    "MirroredStrategy",
    "MultiWorkerMirroredStrategy",
    "Strategy",
    "WorkerTimeoutError",
    "current_strategy",
    "logical_cpu_devices",
    "shard_indices",
    "split_sizes",
]
