"""Shared fixtures: ``backend`` runs a test once per installed backend."""

from __future__ import annotations

import importlib.util
import os

import pytest

from minidl import backend as K
from minidl.backends import registry

BACKENDS = ("numpy", "theano", "tensorflow")

# Theano (PyTensor) steps compile in the backend's PY mode in tests (Python linker, merge
# rewrites only): a cold C compile or a full rewrite pass per small test graph would dominate
# the suite's run time. test_backend_theano.py trains an MLP and a CNN in the default mode.
# An explicit MINIDL_THEANO_MODE is kept.
os.environ.setdefault("MINIDL_THEANO_MODE", "PY")


def backend_skip_reason(name: str) -> str | None:
    """Why ``name`` cannot run here, or None when it can."""
    info = registry.resolve(name)
    if info.requires and importlib.util.find_spec(info.requires) is None:
        return f"{name} backend not installed ({info.install})"
    return None


def installed_backends() -> list[str]:
    return [name for name in BACKENDS if backend_skip_reason(name) is None]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Make each backend current in turn; skip one whose package is absent."""
    reason = backend_skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    previous = K.name()
    K.set_backend(request.param)
    try:
        yield request.param
    finally:
        K.set_backend(previous)


@pytest.fixture(autouse=True)
def _default_backend():
    """Every test starts on the configured default backend (numpy unless MINIDL_BACKEND)."""
    K.set_backend(os.environ.get("MINIDL_BACKEND", "numpy"))
    yield
