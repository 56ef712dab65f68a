"""Saving a model that holds a ``Lambda``: the check both Lambda test modules make."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from minidl.models import load_model


def save_and_reload_lambda_model(
    model: Any, path: str, lambda_layer: str, custom_objects: dict[str, Callable[..., Any]]
) -> Any:
    """Save ``model`` to ``path`` and load it back with ``custom_objects``.

    Loading without them must fail with a ``ValueError`` that names the Lambda layer
    ``lambda_layer`` and says to pass ``custom_objects`` (a file never brings its own code).
    """
    model.save(path)
    with pytest.raises(
        ValueError, match=rf"'{re.escape(lambda_layer)}' \(Lambda\).*custom_objects"
    ):
        load_model(path)
    return load_model(path, custom_objects=custom_objects)
