"""Import the optional packages of the ``[medical]`` extra, or say how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'minidl[medical]'"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the pip command of the ``[medical]`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise ImportError(
            f"{feature} needs the `{package}` package, part of minidl's [medical] extra. "
            f"Install it with: {INSTALL_HINT}. Received: ImportError({error})"
        ) from error
