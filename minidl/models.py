"""Models: ``Model`` (a graph of layers), ``Sequential`` (a stack), and loading them.

>>> import numpy as np
>>> from minidl.models import Sequential
>>> from minidl.layers import Dense
>>> model = Sequential([Dense(4, input_dim=3, activation="relu"), Dense(1)])
>>> model.compile(optimizer="sgd", loss="mse")
>>> history = model.fit(np.ones((8, 3)), np.zeros(8), epochs=2, verbose=0)
>>> len(history.history["loss"]), model.predict(np.ones((2, 3))).shape
(2, (2, 1))
"""

from __future__ import annotations

import json
from typing import Any

from minidl.engine.model import Model
from minidl.engine.sequential import Sequential

__all__ = [
    "Model",
    "Sequential",
    "load_model",
    "model_from_config",
    "model_from_json",
    "model_from_yaml",
]


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "YAML model configs need PyYAML, which is not installed. Install it with: "
            "pip install pyyaml"
        ) from None
    return yaml


def model_from_config(config: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild a model (with fresh weights) from ``{"class_name", "config"}``."""
    from minidl import saving

    return saving.model_from_config(config, custom_objects)


def model_from_json(json_string: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild a model (with fresh weights) from ``to_json``'s output (or Keras 2's)."""
    try:
        spec = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"`model_from_json` needs a JSON string. Received: {err}") from None
    return model_from_config(spec, custom_objects)


def model_from_yaml(yaml_string: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild a model from ``to_yaml``'s output; read with ``yaml.safe_load`` (no code runs)."""
    yaml = _yaml()
    try:
        spec = yaml.safe_load(yaml_string)
    except yaml.YAMLError as err:
        raise ValueError(f"`model_from_yaml` needs a YAML model config. Received: {err}") from None
    if not isinstance(spec, dict):
        raise ValueError(
            f"`model_from_yaml` needs a mapping with class_name and config. Received: {spec!r}"
        )
    return model_from_config(spec, custom_objects)


def load_model(
    filepath: str, custom_objects: dict[str, Any] | None = None, compile: bool = True
) -> Any:
    """Rebuild a model saved with ``model.save`` (architecture, weights, compile settings)."""
    from minidl import saving

    return saving.load_model(filepath, custom_objects, compile)
