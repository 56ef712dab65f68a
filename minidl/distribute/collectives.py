"""MPI collectives that give up after a timeout instead of waiting for a dead worker forever.

Every collective is started non-blocking and polled; when the other workers do not answer
within ``timeout`` seconds, ``WorkerTimeoutError`` is raised and the MPI world is aborted when
the process exits (a pending collective cannot be cancelled, and ``MPI_Finalize`` could wait
on it). ``mpiexec`` (MPICH's Hydra, Open MPI's ORTE/PRRTE) already ends the job at once when a
worker process is killed; the timeout covers a worker that hangs or a launcher that does not.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from typing import Any

import numpy as np

DEFAULT_TIMEOUT = 600.0
"""Seconds a worker waits for the others in one collective (covers a cold compile)."""


class WorkerTimeoutError(RuntimeError):
    """Raised when the other workers do not join a collective within the timeout."""


class Collectives:
    """Timed collectives over an ``mpi4py`` communicator.

    Args:
        comm: an ``mpi4py.MPI.Comm`` (``MPI.COMM_WORLD`` by default in ``MPIStrategy``).
        timeout: seconds to wait in one collective before raising ``WorkerTimeoutError``.
    """

    def __init__(self, comm: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = float(timeout)
        self._aborting = False

    def _wait(self, request: Any, what: str) -> None:
        start = time.monotonic()
        polls = 0
        while not request.Test():
            polls += 1
            if polls < 100:  # a step's all-reduce usually completes while spinning
                continue
            waited = time.monotonic() - start
            if waited < 0.01:
                os.sched_yield()  # give a descheduled worker the core first
            else:
                time.sleep(0.0005)
            if waited > self.timeout:
                self._fail(what)

    def abort_at_exit(self) -> None:
        """End the whole MPI job when this process exits (the others stop waiting at once)."""
        if not self._aborting:
            self._aborting = True
            atexit.register(self.comm.Abort, 1)

    def _fail(self, what: str) -> None:
        self.abort_at_exit()
        raise WorkerTimeoutError(
            f"Worker {self.rank} of {self.size} waited {self.timeout:g} s for the others in "
            f"{what}: a worker died, hangs, or left the training loop early. The MPI job is "
            f"aborted when this process exits. Received: timeout={self.timeout:g}"
        )

    def allreduce_sum(self, array: np.ndarray, what: str = "an all-reduce") -> np.ndarray:
        """Element-wise sum of ``array`` over all workers (a new array)."""
        send = np.ascontiguousarray(array)
        recv = np.empty_like(send)
        self._wait(self.comm.Iallreduce(send, recv, op=self.MPI.SUM), what)
        return recv

    def allreduce_sum_in_place(self, buffer: np.ndarray, what: str = "an all-reduce") -> None:
        """Replace the contiguous ``buffer`` by its element-wise sum over all workers."""
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM), what)

    def allreduce_max(self, array: np.ndarray, what: str = "an all-reduce") -> np.ndarray:
        """Element-wise maximum of ``array`` over all workers (a new array)."""
        send = np.ascontiguousarray(array)
        recv = np.empty_like(send)
        self._wait(self.comm.Iallreduce(send, recv, op=self.MPI.MAX), what)
        return recv

    def broadcast(self, array: np.ndarray, root: int = 0, what: str = "a broadcast") -> np.ndarray:
        """``root``'s ``array`` on every worker (same shape and dtype on all of them)."""
        buffer = np.array(array, copy=True, order="C")
        self._wait(self.comm.Ibcast(buffer, root=root), what)
        return buffer

    def allgather_json(self, obj: Any, what: str = "an all-gather") -> list[Any]:
        """Every worker's JSON-serialisable ``obj``, in rank order (no pickle: no code runs)."""
        data = np.frombuffer(json.dumps(obj, sort_keys=True).encode(), dtype=np.uint8)
        lengths = np.empty(self.size, dtype=np.int64)
        self._wait(self.comm.Iallgather(np.array([data.size], np.int64), lengths), what)
        received = np.empty(int(lengths.sum()), dtype=np.uint8)
        request = self.comm.Iallgatherv(data, [received, lengths, self.MPI.BYTE])
        self._wait(request, what)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [
            json.loads(received[bounds[i] : bounds[i + 1]].tobytes().decode())
            for i in range(self.size)
        ]
