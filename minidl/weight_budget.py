"""Bounds on the weights layers may create, checked before anything is allocated.

``Layer.add_weight`` calls ``charge`` with a weight's declared shape and dtype before its
initializer runs. Three bounds apply:

* always: one weight may declare at most ``MAX_MODEL_BYTES`` (16 GiB, the same bound
  ``minidl.hdf5_checks`` puts on the datasets of one file), and no negative dimension;
* ``model_from_config`` (so ``model_from_json``, ``model_from_yaml`` and ``load_model``) builds
  inside ``limit_bytes(MAX_MODEL_BYTES, ...)``: all weights of the model together stay below it;
* ``load_model`` also builds inside ``limit(n, path)``, where ``n`` is the number of weight
  values the file stores, so a config cannot declare layers larger than its file.

A config asking for absurd sizes thus fails with a ``ValueError`` naming the layer, the weight,
its shape and (when one matches) the config field that set it, instead of exhausting memory.
VGG16 (138M parameters, 0.5 GiB) is far below the bound.

>>> with limit(10, "model.h5"):  # doctest: +ELLIPSIS
...     charge("dense", "kernel", (3, 4))
Traceback (most recent call last):
    ...
ValueError: model.h5: layer 'dense' declares weight 'kernel' of shape (3, 4) (12 values...
>>> with limit_bytes(MAX_MODEL_BYTES, "model config"):  # doctest: +ELLIPSIS
...     charge("conv", "kernel", (1, 1, 8, 696395787), "float32", lambda: {"filters": 696395787})
Traceback (most recent call last):
    ...
ValueError: model config: layer 'conv' declares weight 'kernel' of shape (1, 1, 8, 696395787) \
(5571166296 values, 22284665184 bytes as float32; set by filters=696395787), more than ...
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

MAX_MODEL_BYTES = 16 * 2**30  # one model's weights (hdf5_checks.MAX_DECLARED_BYTES for files)


class _Budget:
    """What one active ``limit``/``limit_bytes`` still allows."""

    def __init__(self, allowed: int, unit: str, source: str):
        self.left, self.total, self.unit, self.source = allowed, allowed, unit, source


_budgets: contextvars.ContextVar[tuple[_Budget, ...]] = contextvars.ContextVar(
    "weight_budgets", default=()
)


@contextlib.contextmanager
def _active(budget: _Budget) -> Iterator[_Budget]:
    token = _budgets.set((*_budgets.get(), budget))
    try:
        yield budget
    finally:
        _budgets.reset(token)


def limit(values_allowed: int, source: str) -> contextlib.AbstractContextManager[_Budget]:
    """Let layers built in this block create at most ``values_allowed`` weight values in all.

    ``source`` (the file) starts the error message.
    """
    return _active(_Budget(int(values_allowed), "values", source))


def limit_bytes(bytes_allowed: int, source: str) -> contextlib.AbstractContextManager[_Budget]:
    """Let layers built in this block create at most ``bytes_allowed`` bytes of weights in all.

    The block gets the budget; its ``total - left`` is what was charged so far.
    """
    return _active(_Budget(int(bytes_allowed), "bytes", source))


def _field_hint(shape: tuple[int, ...], config: Callable[[], dict[str, Any]] | None) -> str:
    """``"; set by filters=N"`` for the config fields equal to the largest dimension."""
    if config is None or not shape:
        return ""
    try:
        fields = config()
    except Exception:  # a layer whose get_config fails is described without a hint
        return ""
    largest = max(shape)

    def holds(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return any(holds(v) for v in value)
        return isinstance(value, int) and not isinstance(value, bool) and value == largest

    names = [f"{key}={value!r}" for key, value in fields.items() if holds(value)]
    return f"; set by {', '.join(names)}" if names else ""


def charge(
    layer_name: str,
    weight_name: str,
    shape: Sequence[int],
    dtype: Any = "float32",
    config: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Check a new weight against ``MAX_MODEL_BYTES`` and the active limits, then count it.

    ``config`` (the layer's ``get_config``) is called only to word an error.
    """
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(
            f"Layer {layer_name!r} cannot create weight {weight_name!r}: a shape needs "
            f"dimensions >= 0{_field_hint(shape, config)}. Received: shape={shape}"
        )
    count = math.prod(shape)
    nbytes = count * np.dtype(dtype).itemsize
    budgets = _budgets.get()

    def refuse(source: str, why: str) -> ValueError:
        prefix = f"{source}: layer" if source else "Layer"
        return ValueError(
            f"{prefix} {layer_name!r} declares weight {weight_name!r} of shape {shape} "
            f"({count} values, {nbytes} bytes as {np.dtype(dtype).name}"
            f"{_field_hint(shape, config)}), {why}; refusing to allocate it."
        )

    for budget in budgets:
        if budget.unit == "values" and count > budget.left:
            raise refuse(
                budget.source, f"but the file holds only {budget.total} weight values in all"
            )
        if budget.unit == "bytes" and nbytes > budget.left:
            raise refuse(
                budget.source,
                f"more than the {budget.left} bytes left of the {budget.total} bytes minidl "
                "allows for the weights of one model (minidl.weight_budget.MAX_MODEL_BYTES)",
            )
    if nbytes > MAX_MODEL_BYTES:
        raise refuse(
            budgets[-1].source if budgets else "",
            f"more than the {MAX_MODEL_BYTES} bytes minidl allows for one weight "
            "(minidl.weight_budget.MAX_MODEL_BYTES)",
        )
    for budget in budgets:
        budget.left -= count if budget.unit == "values" else nbytes
