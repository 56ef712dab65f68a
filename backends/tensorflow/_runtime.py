"""Import TensorFlow quietly and hold the backend's configuration.

TensorFlow writes start-up lines to the terminal (oneDNN notices, absl warnings) that say
nothing about the user's program. Unless ``MINIDL_TF_VERBOSE=1`` is set, this module sets
``TF_CPP_MIN_LOG_LEVEL=2`` (when the user has not chosen a level), silences the process's
stderr while ``tensorflow`` is being imported (some of its C++ start-up lines ignore that
level), and lowers TensorFlow's Python logger to errors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from minidl.backends.config import (  # noqa: F401 (re-exported to this package)
    epsilon,
    floatx,
    image_data_format,
)

VERBOSE_ENV = "MINIDL_TF_VERBOSE"
XLA_ENV = "MINIDL_TF_XLA"
IN_PLACE_ENV = "MINIDL_TF_IN_PLACE"
_TRUE_WORDS = ("1", "true", "yes", "on")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_WORDS


def verbose() -> bool:
    """Whether TensorFlow's own log lines should reach the terminal (``MINIDL_TF_VERBOSE=1``)."""
    return _env_flag(VERBOSE_ENV)


def xla_enabled() -> bool:
    """Whether ``function`` compiles steps with XLA (``MINIDL_TF_XLA=1``; read per call)."""
    return _env_flag(XLA_ENV)


def in_place_enabled() -> bool:
    """Whether updates ``v - d`` become in-place ``assign_sub`` (``MINIDL_TF_IN_PLACE=0``: off)."""
    return os.environ.get(IN_PLACE_ENV, "").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (C++ code writes there directly)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow():
    if verbose():
        import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_silenced():
        import tensorflow
    for logger_name in ("tensorflow", "absl"):
        logger = logging.getLogger(logger_name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
    return tensorflow


tf = _import_tensorflow()

_device: list[str] = []


def backend_device() -> str:
    """Return ``"gpu"`` when TensorFlow sees a GPU (steps then run there), else ``"cpu"``."""
    if not _device:
        _device.append("gpu" if tf.config.list_physical_devices("GPU") else "cpu")
    return _device[0]
