"""The check that every worker runs the same setup, made before the first step.

Workers exchange a small description of what they are about to run (minidl version, backend,
the model's structure and weight shapes, the optimizer, the loss, the batch size, the data's
size); when any field differs, every worker raises the same ``ValueError`` naming the field
and each worker's value, instead of hanging in an all-reduce of mismatched gradients.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from minidl import backend as K


def _without_names(config: Any) -> Any:
    """``config`` with every ``name`` entry dropped (layer names count models built so far)."""
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_description(model: Any) -> dict[str, Any]:
    """Version, backend, structure and compile settings of ``model`` (JSON-serialisable)."""
    from minidl import __version__, optimizers

    shapes = [list(shape) for shape in map(model.backend_module().int_shape, model.weights)]
    config = _without_names(model.get_config()) if hasattr(model, "get_config") else None
    optimizer = model.optimizer
    return {
        "minidl version": __version__,
        "backend": K.name(),
        "weight shapes": shapes,
        "model config": _digest(config),
        "optimizer": optimizers.serialize(optimizer) if optimizer is not None else None,
        "loss": getattr(model, "loss_name", None),
        "metrics": list(getattr(model, "metrics_names", [])),
    }


def mismatches(descriptions: Sequence[dict[str, Any]]) -> list[str]:
    """One line per field on which the workers' descriptions differ."""
    lines = []
    fields = sorted({key for d in descriptions for key in d})
    for field in fields:
        values = [d.get(field) for d in descriptions]
        if any(v != values[0] for v in values[1:]):
            shown = ", ".join(f"worker {rank}: {value!r}" for rank, value in enumerate(values))
            lines.append(f"{field} ({shown})")
    return lines


def check_same_setup(collectives: Any, description: dict[str, Any], what: str) -> None:
    """Raise ``ValueError`` on every worker when the workers' descriptions differ."""
    descriptions = collectives.allgather_json(
        description, what=f"the check of the workers' setup before {what}"
    )
    problems = mismatches(descriptions)
    if problems:
        raise ValueError(
            f"The {len(descriptions)} workers must run the same minidl version, backend, model "
            f"and training settings before {what}; they differ in: "
            + "; ".join(problems)
            + f". Received: {len(problems)} differing field(s)"
        )
