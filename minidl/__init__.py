"""minidl: a small, fast, honest deep-learning framework with swappable backends."""

from __future__ import annotations

__version__ = "0.1.0"


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
