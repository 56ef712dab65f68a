"""The backend facade ``K``: ``from minidl import backend as K`` then ``K.relu(x)``.

The backend is chosen on first use: the ``MINIDL_BACKEND`` environment variable, else the
``"backend"`` key of ``$MINIDL_HOME/minidl.json`` (default ``~/.minidl/minidl.json``), else
``numpy``. ``set_backend`` switches explicitly (tests use it); models remember the backend
they were built with and refuse to run on another one.

>>> from minidl import backend as K
>>> K.floatx()
'float32'
>>> K.set_backend("caffe")  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
ValueError: Unknown backend 'caffe'. Available backends: numpy, tensorflow, theano (...).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from minidl.backends import interface, registry

logger = logging.getLogger("minidl")

_loaded: dict[str, ModuleType] = {}
_current: ModuleType | None = None
_current_name: str | None = None


def config_path() -> Path:
    """Path of the JSON config file (``$MINIDL_HOME/minidl.json``, default ``~/.minidl``)."""
    home = os.environ.get("MINIDL_HOME") or os.path.join(os.path.expanduser("~"), ".minidl")
    return Path(home) / "minidl.json"


def _configured_name() -> str:
    env = os.environ.get("MINIDL_BACKEND")
    if env:
        return env
    path = config_path()
    if path.is_file():
        try:
            config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"Could not read the minidl config file {path}: {err}") from None
        if not isinstance(config, dict):
            raise ValueError(
                f"The minidl config file {path} must hold a JSON object such as "
                f'{{"backend": "numpy"}}. Received: {config!r}'
            )
        if config.get("backend"):
            return str(config["backend"])
    return "numpy"


def check_contract(module: ModuleType, name: str) -> None:
    """Raise ``ImportError`` listing contract functions ``module`` lacks or defines differently."""
    missing, mismatched = [], []
    for fn_name in interface.CONTRACT:
        impl = getattr(module, fn_name, None)
        if impl is None or not callable(impl):
            missing.append(fn_name)
            continue
        want = list(inspect.signature(getattr(interface, fn_name)).parameters)
        try:
            got = list(inspect.signature(impl).parameters)
        except (TypeError, ValueError):
            continue
        if got != want:
            mismatched.append(f"{fn_name}({', '.join(got)}) != ({', '.join(want)})")
    if missing or mismatched:
        problems = []
        if missing:
            problems.append("missing: " + ", ".join(missing))
        if mismatched:
            problems.append("signatures differ: " + "; ".join(mismatched))
        raise ImportError(f"Backend {name!r} does not implement the minidl contract ({problems}).")


def load(name: str) -> ModuleType:
    """Import backend ``name`` (checked against the contract) without making it current."""
    info = registry.resolve(name)
    if info.name in _loaded:
        return _loaded[info.name]
    if info.requires and importlib.util.find_spec(info.requires) is None:
        raise ImportError(
            f"The {info.name!r} backend needs the {info.requires!r} package, which is not "
            f"installed. Install it with: {info.install}"
        )
    module = importlib.import_module(info.module)
    check_contract(module, info.name)
    _loaded[info.name] = module
    return module


def set_backend(name: str) -> None:
    """Make ``name`` the current backend (models built earlier stay bound to theirs)."""
    global _current, _current_name
    module = load(name)
    _current, _current_name = module, registry.resolve(name).name
    logger.debug("minidl backend: %s", _current_name)


def current() -> ModuleType:
    """The current backend module, loading the configured one on first use."""
    if _current is None:
        set_backend(_configured_name())
    assert _current is not None
    return _current


def name() -> str:
    """Name of the current backend: ``"numpy"``, ``"theano"``, ``"tensorflow"`` or a plug-in's."""
    current()
    assert _current_name is not None
    return _current_name


def __getattr__(attr: str) -> Any:
    if attr.startswith("__"):
        raise AttributeError(attr)
    if attr not in interface.CONTRACT:
        raise AttributeError(f"minidl.backend has no attribute {attr!r}")
    return getattr(current(), attr)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(interface.CONTRACT))
