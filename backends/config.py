"""The configuration every backend reports the same: float dtype, fuzz factor, image layout."""

from __future__ import annotations

FLOATX = "float32"
EPSILON = 1e-7


def floatx() -> str:
    """Return the default float dtype name, ``"float32"``."""
    return FLOATX


def epsilon() -> float:
    """Return the fuzz factor used to keep logs and divisions finite, ``1e-7``."""
    return EPSILON


def image_data_format() -> str:
    """Return ``"channels_last"``, the only image layout minidl uses."""
    return "channels_last"
