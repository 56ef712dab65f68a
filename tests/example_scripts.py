"""Import a script from ``examples/`` as a module, so tests can call its functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(script: str) -> ModuleType:
    """The module of ``examples/<script>`` (run as an import: its ``__main__`` part is not)."""
    path = EXAMPLES / script
    spec = importlib.util.spec_from_file_location(f"{path.stem}_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
