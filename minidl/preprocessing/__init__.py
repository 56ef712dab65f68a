"""Keras 2's ``keras.preprocessing``: ``image``, ``text`` and ``sequence`` helpers.

The submodules load on first use (``minidl.preprocessing.text`` needs only NumPy).
"""

from __future__ import annotations

import importlib
from types import ModuleType

SUBMODULES = ("image", "sequence", "text")


def __getattr__(name: str) -> ModuleType:
    if name in SUBMODULES:
        return importlib.import_module(f"minidl.preprocessing.{name}")
    raise AttributeError(f"module 'minidl.preprocessing' has no attribute {name!r}")
