"""The strategy base class and the stack of strategies whose ``scope()`` is open.

A model compiled inside ``strategy.scope()`` keeps the strategy as ``model.distribute_strategy``;
its ``fit`` then goes through ``strategy.fit`` and its train step through
``strategy.reduce_gradients`` and ``strategy.compile_step``. Outside any scope these hooks are
absent and a model trains on one process exactly as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from minidl import backend as K

_local = threading.local()


def _stack() -> list[Strategy]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def current_strategy() -> Strategy | None:
    """The strategy whose ``scope()`` is innermost, or None outside every scope."""
    stack = _stack()
    return stack[-1] if stack else None


class Strategy:
    """What a data-parallel strategy offers the engine (subclasses fill in the collectives).

    Attributes:
        rank: this worker's index, 0 for the chief.
        size: the number of workers (processes).
    """

    rank: int = 0
    size: int = 1

    @property
    def is_chief(self) -> bool:
        """True on the worker that shows progress and writes checkpoints and logs (rank 0)."""
        return self.rank == 0

    @property
    def num_replicas_in_sync(self) -> int:
        """How many copies of the model take part in one step (Keras' name)."""
        return self.size

    @contextlib.contextmanager
    def scope(self) -> Iterator[Strategy]:
        """Models compiled inside this block train with this strategy."""
        _stack().append(self)
        try:
            with self._backend_scope():
                yield self
        finally:
            _stack().pop()

    def _backend_scope(self) -> contextlib.AbstractContextManager:
        """A context the backend needs while models are built (none by default)."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ engine hooks
    def reduce_gradients(self, grads: Sequence[Any], params: Sequence[Any]) -> list[Any]:
        """Average ``grads`` of ``params`` (tensors of the traced train step) over all workers."""
        raise NotImplementedError

    def compile_step(
        self, fn: Callable[..., Any], input_specs: Sequence[tuple], name: str | None = None
    ) -> Callable[..., list[Any]]:
        """Compile the train step (``K.function`` unless the backend replicates it itself)."""
        return K.function(fn, input_specs, name=name)

    def fit(self, model: Any, fit_loop: Callable[..., Any], x: Any, y: Any, options: Any) -> Any:
        """Run the engine's ``fit_loop(model, x, y, options)`` the way this strategy needs."""
        return fit_loop(model, x, y, options)
