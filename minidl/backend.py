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
        config = read_config(path)
        backend = config.get("backend")
        if backend is not None and not isinstance(backend, str):
            raise ValueError(
                f'The minidl config file {path}: "backend" must be a string such as "numpy". '
                f"Received: {backend!r}"
            )
        if backend:
            return backend
    return "numpy"


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in the config file ``path``; ``ValueError`` naming it when unreadable."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ValueError(f"Could not read the minidl config file {path}: {err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(
            f"The minidl config file {path} is not valid UTF-8 text (byte {err.start}). "
            f'Write it as JSON such as {{"backend": "numpy"}}.'
        ) from None
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(
            f"The minidl config file {path} is not valid JSON ({err}). "
            f'Expected an object such as {{"backend": "numpy"}}.'
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"The minidl config file {path} must hold a JSON object such as "
            f'{{"backend": "numpy"}}. Received: {config!r}'[:300]
        )
    return config


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


# ----------------------------------------------------------- Keras 2 session functions
IMAGE_DATA_FORMATS = ("channels_last", "channels_first")
_image_data_format: str | None = None


def backend() -> str:
    """Keras 2's ``K.backend()``: the current backend's name (same as ``name()``)."""
    return name()


def image_data_format() -> str:
    """The default ``data_format`` of image layers: ``"channels_last"`` unless changed.

    Set it with ``set_image_data_format`` or the ``"image_data_format"`` key of the config
    file. Backends always compute channels-last; a ``channels_first`` layer transposes.
    """
    global _image_data_format
    if _image_data_format is None:
        path = config_path()
        configured = "channels_last"
        if path.is_file():  # an unreadable file is a ValueError naming it, as for the backend
            configured = read_config(path).get("image_data_format", configured)
        _image_data_format = _check_image_data_format(configured)
    return _image_data_format


def _check_image_data_format(data_format: Any) -> str:
    if data_format not in IMAGE_DATA_FORMATS:
        raise ValueError(
            f"`data_format` must be one of {IMAGE_DATA_FORMATS}. Received: {data_format!r}"
        )
    return data_format


def set_image_data_format(data_format: str) -> None:
    """Set the default ``data_format`` of image layers created afterwards."""
    global _image_data_format
    _image_data_format = _check_image_data_format(data_format)


def image_dim_ordering() -> str:
    """Keras 1's name: ``"tf"`` for channels-last, ``"th"`` for channels-first."""
    return "tf" if image_data_format() == "channels_last" else "th"


def set_image_dim_ordering(dim_ordering: str) -> None:
    """Keras 1's setter: ``"tf"`` (channels-last) or ``"th"`` (channels-first)."""
    formats = {"tf": "channels_last", "th": "channels_first"}
    if dim_ordering not in formats:
        raise ValueError(f"`dim_ordering` must be 'tf' or 'th'. Received: {dim_ordering!r}")
    set_image_data_format(formats[dim_ordering])


def clear_session() -> None:
    """Start afresh as Keras 2 does: automatic layer names count from 1 again.

    minidl keeps no global graph; models and their compiled steps are freed when no longer
    referenced.
    """
    from minidl.layers import reset_layer_names

    reset_layer_names()


def learning_phase() -> Any:
    """The learning-phase placeholder: an extra ``K.function`` input, 0 (test) or 1 (train)."""
    from minidl.symbolic_function import LEARNING_PHASE

    return LEARNING_PHASE


def set_learning_phase(value: int) -> None:
    """Accept Keras 2's ``set_learning_phase(0)``; minidl has no global training switch.

    Inference (0) is already what ``predict``, ``evaluate`` and ``K.function`` use by
    default; ``fit`` trains with 1. A global 1 would change every later result, so it is
    refused; pass ``K.learning_phase()`` to ``K.function`` instead.
    """
    if value not in (0, 1):
        raise ValueError(f"The learning phase must be 0 or 1. Received: {value!r}")
    if value == 1:
        raise ValueError(
            "minidl has no global learning phase; set_learning_phase(1) would change every "
            "later call. Pass K.learning_phase() as an extra K.function input, or call the "
            "layer with training=True. Received: value=1"
        )


def function(*args: Any, **kwargs: Any) -> Any:
    """Compile a step: ``function(fn, input_specs)`` (the contract) or Keras 2's
    ``function(inputs, outputs, updates=None)`` over symbolic tensors from ``Input``.

    In the Keras 2 form ``K.learning_phase()`` may be one of the inputs; the call then takes
    0 or 1 in its place and runs dropout and batch normalization in that mode.
    """
    if args and callable(args[0]):
        return current().function(*args, **kwargs)
    from minidl.symbolic_function import SymbolicFunction

    return SymbolicFunction(*args, **kwargs)


# ------------------------------------------ shapes of symbolic tensors (functional API)
def _is_symbolic(x: Any) -> bool:
    return type(x).__name__ == "KerasTensor"  # minidl.engine.node, not imported here


def int_shape(x: Any) -> tuple[int | None, ...]:
    """Static shape of a backend tensor or variable, or of a symbolic tensor from ``Input``."""
    return x.shape if _is_symbolic(x) else current().int_shape(x)


def ndim(x: Any) -> int:
    """Rank of a backend tensor or variable, or of a symbolic tensor from ``Input``."""
    return len(x.shape) if _is_symbolic(x) else current().ndim(x)


def dtype(x: Any) -> str:
    """Dtype name of a backend tensor or variable, or of a symbolic tensor from ``Input``."""
    return x.dtype if _is_symbolic(x) else current().dtype(x)


def __getattr__(attr: str) -> Any:
    if attr.startswith("__"):
        raise AttributeError(attr)
    if attr not in interface.CONTRACT:
        raise AttributeError(f"minidl.backend has no attribute {attr!r}")
    return getattr(current(), attr)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(interface.CONTRACT))
