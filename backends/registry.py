"""Known backends: where each lives and what installs it; third-party ones via entry points."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import metadata

ENTRY_POINT_GROUP = "minidl.backends"


@dataclass(frozen=True)
class BackendInfo:
    """Where a backend's module lives and the package it needs."""

    name: str
    module: str
    requires: str | None  # importable top-level package the backend needs
    install: str  # the pip command that makes it available


BUILTIN: dict[str, BackendInfo] = {
    "numpy": BackendInfo("numpy", "minidl.backends.numpy", None, "pip install minidl"),
    "theano": BackendInfo(
        "theano", "minidl.backends.theano", "pytensor", "pip install -e '.[theano]'"
    ),
    "tensorflow": BackendInfo(
        "tensorflow", "minidl.backends.tensorflow", "tensorflow", "pip install -e '.[tensorflow]'"
    ),
}

ALIASES = {"pytensor": "theano", "tf": "tensorflow", "np": "numpy"}


@functools.lru_cache(maxsize=1)
def plugin_backends() -> dict[str, BackendInfo]:
    """Backends registered by other packages under the ``minidl.backends`` entry-point group.

    Scanned once per process (the scan costs milliseconds); ``plugin_backends.cache_clear()``
    rescans after installing a plug-in.
    """
    found = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = BackendInfo(entry.name, entry.value, None, f"pip install {entry.name}")
    return found


def available() -> dict[str, BackendInfo]:
    """All known backends, built-in ones first."""
    return {**plugin_backends(), **BUILTIN}


def resolve(name: str) -> BackendInfo:
    """Return the backend called ``name`` (aliases accepted).

    Raises:
        ValueError: for an unknown name, listing the available backends.
    """
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key in BUILTIN:
        return BUILTIN[key]
    known = available()
    if key not in known:
        raise ValueError(
            f"Unknown backend {name!r}. Available backends: {', '.join(sorted(known))} "
            f"(aliases: {', '.join(f'{a}->{b}' for a, b in sorted(ALIASES.items()))})."
        )
    return known[key]
