"""minidl: a small, fast, honest deep-learning framework with swappable backends.

Submodules load on first use (``minidl.layers``, ``minidl.models``, ``minidl.utils``, ...),
so ``import minidl`` stays light and never imports a backend's heavy package.

>>> import minidl
>>> minidl.utils.to_categorical([1]).tolist()
[[0.0, 1.0]]
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

SUBMODULES = (
    "activations",
    "applications",
    "backend",
    "callbacks",
    "constraints",
    "data",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "preprocessing",
    "regularizers",
    "saving",
    "utils",
    "wrappers",
)


def __getattr__(name: str) -> ModuleType:
    if name in SUBMODULES:
        module = importlib.import_module(f"minidl.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES))


def set_random_seed(seed: int) -> None:
    """Seed weight initializers, Python's ``random`` and NumPy's global generator.

    With the same seed, a model gets identical initial weights on every backend.
    """
    import random

    import numpy as np

    from minidl import initializers

    initializers.set_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
