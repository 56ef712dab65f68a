"""Keras 1 and Keras 2 arguments of ``fit``/``evaluate``/``predict`` that minidl accepts.

``nb_epoch`` is Keras 1's ``epochs`` (renamed with a warning, as Keras 2 did).
``max_queue_size``, ``workers`` and ``use_multiprocessing`` are accepted with a one-time
warning: minidl reads batches in the calling thread (``DirectoryIterator`` prefetches one
batch itself), and results do not depend on them. Keras 1 arguments whose meaning changed
(``samples_per_epoch``, ``nb_val_samples``, ``val_samples``) raise, naming the Keras 2 one.
"""

from __future__ import annotations

import warnings
from typing import Any

NO_EFFECT = ("max_queue_size", "workers", "use_multiprocessing")
CHANGED_MEANING = {
    "samples_per_epoch": "steps_per_epoch (batches, not samples)",
    "nb_val_samples": "validation_steps (batches, not samples)",
    "val_samples": "steps (batches, not samples)",
}
_warned: set[str] = set()


def check_extra_arguments(method: str, kwargs: dict[str, Any], epochs: Any = None) -> Any:
    """Handle the extra keyword arguments of ``method``; return the (possibly renamed) epochs.

    Raises:
        TypeError: for an argument minidl does not know.
        ValueError: for a Keras 1 argument whose meaning changed in Keras 2.
    """
    kwargs = dict(kwargs)
    if "nb_epoch" in kwargs:
        epochs = kwargs.pop("nb_epoch")
        warnings.warn(
            f"The `nb_epoch` argument of `{method}` has been renamed `epochs` (Keras 2).",
            UserWarning,
            stacklevel=3,
        )
    for name, replacement in CHANGED_MEANING.items():
        if name in kwargs:
            raise ValueError(
                f"`{method}` does not take the Keras 1 argument `{name}`: Keras 2 replaced it "
                f"with {replacement}. Received: {name}={kwargs[name]!r}"
            )
    for name in NO_EFFECT:
        if name in kwargs:
            kwargs.pop(name)
            if name not in _warned:
                _warned.add(name)
                warnings.warn(
                    f"`{method}`: `{name}` is accepted but has no effect in minidl (batches are "
                    "read in the calling thread; results are the same).",
                    UserWarning,
                    stacklevel=3,
                )
    if kwargs:
        raise TypeError(f"`{method}` got unexpected keyword arguments: {sorted(kwargs)}")
    return epochs
