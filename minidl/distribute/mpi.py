"""``MPIStrategy``: synchronous data-parallel training over MPI, on every backend.

Launch one process per worker with ``mpiexec -n N python train.py``. Inside the strategy's
``scope()`` build and compile the model; ``fit`` then takes the *global* batch size. Each
step, every worker computes the gradients of its part of the global batch, one all-reduce
averages them (weighted by the number of samples each worker held, so the result is the
gradient of the whole global batch), and every worker applies the same update. The
all-reduce runs inside the compiled step as a ``K.numpy_function`` host callback.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.distribute import consistency, sync
from minidl.distribute.collectives import DEFAULT_TIMEOUT, Collectives
from minidl.distribute.context import Strategy
from minidl.distribute.sharding import GlobalBatchShards, num_samples

INSTALL_HINT = "pip install 'minidl[distributed]' (mpi4py and the mpich wheel)"


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError(
            f"MPIStrategy needs mpi4py and an MPI library ({err}). Install them with: "
            f"{INSTALL_HINT}"
        ) from None
    return MPI


def _as_rows(data: Any) -> Any:
    """Arrays stay as they are (memory maps and h5py data sets are read lazily).

    A list of arrays (one per model input or output) or a dict of them keeps its structure.
    """
    if data is None or isinstance(data, np.ndarray):
        return data
    if hasattr(data, "to_numpy"):
        return data.to_numpy()
    if hasattr(data, "shape"):
        return data
    if isinstance(data, dict):
        return {key: _as_rows(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)) and data and all(hasattr(v, "shape") for v in data):
        return [_as_rows(value) for value in data]
    return np.asarray(data)


class MPIStrategy(Strategy):
    """Data-parallel training over the processes of an MPI job (``mpiexec -n N``).

    Args:
        comm: an ``mpi4py`` communicator; ``MPI.COMM_WORLD`` by default.
        timeout: seconds a worker waits for the others in one collective before raising
            ``WorkerTimeoutError``; default ``$MINIDL_DISTRIBUTE_TIMEOUT`` or 600.

    Attributes:
        rank: this process's rank; rank 0 is the chief (progress bar, checkpoints, logs).
        size: the number of processes.
    """

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        mpi = _import_mpi()
        if timeout is None:
            timeout = float(os.environ.get("MINIDL_DISTRIBUTE_TIMEOUT", DEFAULT_TIMEOUT))
        if not timeout > 0:
            raise ValueError(f"`timeout` must be a positive number. Received: timeout={timeout}")
        self.collectives = Collectives(comm if comm is not None else mpi.COMM_WORLD, timeout)
        self.rank, self.size = self.collectives.rank, self.collectives.size
        self._local_count = 1

    def __repr__(self) -> str:
        return f"<MPIStrategy rank={self.rank} size={self.size}>"

    # --------------------------------------------------------------- the train step
    def set_local_count(self, count: int) -> None:
        """Samples this worker holds in the coming step (its weight in the gradient average)."""
        self._local_count = int(count)

    def reduce_gradients(self, grads: Sequence[Any], params: Sequence[Any]) -> list[Any]:
        """Average ``grads`` over the workers inside the step: one all-reduce of all of them."""
        grads = list(grads)
        if not grads:
            return []
        shapes = [tuple(K.int_shape(p)) for p in params]
        dtype = K.dtype(grads[0])
        sizes = [int(np.prod(s)) for s in shapes]
        description = {
            "minidl version": _version(),
            "backend": K.name(),
            "gradient shapes": [list(s) for s in shapes],
            "dtype": dtype,
        }
        state: dict[str, Any] = {"checked": False, "buffer": None}
        reduce_all = functools.partial(self._allreduce_mean, description, state, dtype)
        total = sum(sizes)
        same_dtype = [g if K.dtype(g) == dtype else K.cast(g, dtype) for g in grads]
        flat = K.numpy_function(reduce_all, same_dtype, (total,), dtype)
        averaged, start = [], 0
        for grad, shape, size in zip(grads, shapes, sizes):
            part = functools.partial(_part, start, start + size, shape)
            averaged.append(K.numpy_function(part, [flat], shape, K.dtype(grad)))
            start += size
        return averaged

    def _allreduce_mean(
        self, description: dict[str, Any], state: dict[str, Any], dtype: str, *grads: np.ndarray
    ) -> np.ndarray:
        if not state["checked"]:  # the first call: compare the compiled steps before any reduce
            consistency.check_same_setup(self.collectives, description, "the first train step")
            state["checked"] = True
        size = sum(g.size for g in grads) + 1
        buffer = state["buffer"]
        if buffer is None or buffer.size != size:  # one buffer per step, reused every call
            buffer = state["buffer"] = np.empty(size, dtype=dtype)
        count = self._local_count
        start = 0
        for grad in grads:  # this worker's gradients times its sample count, in one pass
            part = buffer[start : start + grad.size]
            if count > 0:
                np.multiply(grad.reshape(-1), count, out=part)
            else:  # a placeholder step: its gradients may not even be finite
                part.fill(0)
            start += grad.size
        buffer[-1] = count
        self.collectives.allreduce_sum_in_place(buffer, what="the gradient all-reduce")
        flat = buffer[:-1]
        flat /= max(buffer[-1], 1)
        return flat  # read (and copied) by the step's per-gradient slices before the next call

    # ----------------------------------------------------------------------- fit
    def fit(self, model: Any, fit_loop: Callable[..., Any], x: Any, y: Any, options: Any) -> Any:
        """Train on this worker's part of every global batch; see the module docstring."""
        batch_size = options.batch_size or 32
        description = consistency.model_description(model)
        description["fit"] = {
            "epochs": options.epochs,
            "initial epoch": options.initial_epoch,
            "steps per epoch": options.steps_per_epoch,
            "validation split": options.validation_split,
            "shuffle": bool(options.shuffle),
        }
        from minidl.engine.data_adapters import is_array_like

        if is_array_like(x):
            shards, options = self._array_shards(x, y, batch_size, options)
            description["data"] = {"samples": shards.num_samples, "global batch size": batch_size}
            num_samples: int | None = shards.num_samples
            count_of: Callable[[int, dict], int] = lambda batch, logs: shards.local_count(batch)
            x, y = shards, None
        else:
            steps = options.steps_per_epoch or (len(x) if hasattr(x, "__len__") else None)
            description["data"] = {"steps per epoch": steps}
            num_samples = None
            count_of = lambda batch, logs: int(logs.get("size", 0))
        consistency.check_same_setup(self.collectives, description, "training")
        self.broadcast_weights(model)
        totals = sync.EpochTotals(model.metrics_names)
        callbacks: list[Any] = [sync.StepCounts(totals, count_of, self.set_local_count)]
        callbacks += [
            c for c in options.callbacks or [] if sync.runs_on_this_worker(c, self.is_chief)
        ]
        callbacks.append(sync.StepAgreement(self.collectives, totals, count_of))
        if options.verbose and self.is_chief:
            callbacks.append(sync.ChiefProgbar(options.verbose, num_samples))
        options = dataclasses.replace(options, verbose=0, callbacks=callbacks)
        try:
            return fit_loop(model, x, y, options)
        except BaseException:
            # the others are, or will be, waiting in a collective: end the job when this
            # process exits rather than leave them to their timeout
            self.collectives.abort_at_exit()
            raise
        finally:
            self._local_count = 1

    def _array_shards(
        self, x: Any, y: Any, batch_size: int, options: Any
    ) -> tuple[GlobalBatchShards, Any]:
        """This worker's view of array data, and ``options`` for a loop over that view."""
        if y is None:
            raise ValueError("`fit` needs targets: pass `y` along with `x`. Received: y=None")
        if options.steps_per_epoch is not None:
            raise ValueError(
                "MPIStrategy trains on whole passes over array data; leave `steps_per_epoch` "
                f"unset (or pass a Sequence). Received: steps_per_epoch={options.steps_per_epoch}"
            )
        sample_weight = _as_rows(options.sample_weight)
        x, y = _as_rows(x), _as_rows(y)
        lengths = {num_samples(a) for a in (x, y, sample_weight) if a is not None}
        if len(lengths) > 1:
            raise ValueError(
                "`x`, `y` and `sample_weight` must have the same number of samples. Received: "
                f"{num_samples(x)}, {num_samples(y)} and "
                f"{None if sample_weight is None else num_samples(sample_weight)}"
            )
        validation_data = options.validation_data
        if options.validation_split and validation_data is None:
            from minidl.engine.data_adapters import split_validation

            (x, y, sample_weight), val = split_validation(
                x, y, sample_weight, options.validation_split
            )
            validation_data = tuple(v for v in val if v is not None)
        draw = (
            functools.partial(self._draw_order, num_samples(x)) if options.shuffle else lambda: None
        )
        shards = GlobalBatchShards(x, y, sample_weight, batch_size, self.rank, self.size, draw)
        options = dataclasses.replace(
            options,
            batch_size=None,
            validation_split=0.0,
            validation_data=validation_data,
            shuffle=False,
            sample_weight=None,
        )
        return shards, options

    def _draw_order(self, num_samples: int) -> np.ndarray:
        """The chief's ``np.random.permutation`` (as a single process draws it), sent to all."""
        if self.is_chief:
            order = np.asarray(np.random.permutation(num_samples), dtype=np.int64)
        else:
            order = np.empty(num_samples, dtype=np.int64)
        return self.collectives.broadcast(order, what="the broadcast of the epoch's order")

    def broadcast_weights(self, model: Any) -> None:
        """Give every worker the chief's weights (and optimizer state, once it exists)."""
        weights = [
            self.collectives.broadcast(w, what="the broadcast of the initial weights")
            for w in model.get_weights()
        ]
        model.set_weights(weights)
        optimizer = getattr(model, "optimizer", None)
        state = optimizer.get_weights() if optimizer is not None else []
        if state:
            optimizer.set_weights(
                [
                    self.collectives.broadcast(np.asarray(s), what="the optimizer broadcast")
                    for s in state
                ]
            )


def _version() -> str:
    from minidl import __version__

    return __version__


def _part(start: int, stop: int, shape: tuple, flat: np.ndarray) -> np.ndarray:
    """One gradient's slice of the flat all-reduced vector, in its own shape."""
    return flat[start:stop].reshape(shape).copy()
