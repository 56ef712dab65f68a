"""A cap on the weight values layers may create, used while a model is rebuilt from a file.

``load_model`` builds the model described by a file's config inside ``limit(n, path)``, where
``n`` is the number of weight values the file stores; ``Layer.add_weight`` calls ``charge``
before it allocates, so a config declaring huge layers fails with a ``ValueError`` naming the
file and the layer instead of exhausting memory.

>>> with limit(10, "model.h5"):  # doctest: +ELLIPSIS
...     charge("dense", "kernel", (3, 4))
Traceback (most recent call last):
    ...
ValueError: model.h5: layer 'dense' declares weight 'kernel' of shape (3, 4) (12 values), ...
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence

_budget: contextvars.ContextVar[list | None] = contextvars.ContextVar("weight_budget", default=None)


@contextlib.contextmanager
def limit(values_allowed: int, source: str) -> Iterator[None]:
    """Let layers built in this block create at most ``values_allowed`` weight values in all."""
    token = _budget.set([int(values_allowed), int(values_allowed), source])
    try:
        yield
    finally:
        _budget.reset(token)


def charge(layer_name: str, weight_name: str, shape: Sequence[int]) -> None:
    """Count a new weight against the active ``limit`` (no-op outside one)."""
    budget = _budget.get()
    if budget is None:
        return
    count = math.prod(int(d) for d in shape)
    if count > budget[0]:
        raise ValueError(
            f"{budget[2]}: layer {layer_name!r} declares weight {weight_name!r} of shape "
            f"{tuple(shape)} ({count} values), but the file holds only {budget[1]} weight "
            "values in all; refusing to allocate it."
        )
    budget[0] -= count
