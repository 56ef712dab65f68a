"""What ``compile`` decides: per-output losses, loss weights and metrics, and their names.

``loss``, ``loss_weights`` and ``metrics`` may be given once for every output, as a list in
output order, or as a dict keyed by output name (the name of the layer making the output),
as in Keras 2. History keys follow Keras 2: ``loss``, then ``<output>_loss`` per output and
``<output>_<metric>`` when the model has several outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from minidl import backend as K


@dataclass
class OutputTraining:
    """How one output is trained: its loss, weight and metrics (with their display names)."""

    index: int
    name: str
    loss_function: Callable[..., Any]
    loss_name: str
    weight: float
    metric_functions: list[Callable[..., Any]] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)


@dataclass
class CompileOptions:
    """The identifiers given to ``compile``, kept so they can be resolved once built."""

    loss: Any
    metrics: Any = None
    loss_weights: Any = None


def _name_of(identifier: Any) -> str:
    if isinstance(identifier, str):
        return identifier
    return getattr(identifier, "__name__", type(identifier).__name__)


def serializable(identifier: Any) -> Any:
    """``identifier`` with every function replaced by its name (for ``training_config``)."""
    if isinstance(identifier, dict):
        return {key: serializable(value) for key, value in identifier.items()}
    if isinstance(identifier, (list, tuple)):
        return [serializable(value) for value in identifier]
    if identifier is None or isinstance(identifier, (int, float)):
        return identifier
    return _name_of(identifier)


def per_output(value: Any, names: Sequence[str], what: str, default: Any) -> list[Any]:
    """Spread ``value`` over the outputs ``names``: one for all, a list, or a dict by name."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(
                f"Unknown entries in `{what}` dictionary: {unknown}. Only expected the "
                f"following keys: {list(names)}. Received: {what}={value!r}"
            )
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)) and what != "metrics":
        if len(value) != len(names):
            raise ValueError(
                f"When passing a list as `{what}`, it should have one entry per model output. "
                f"The model has {len(names)} outputs ({list(names)}), but you passed "
                f"{what} with {len(value)} entries. Received: {what}={value!r}"
            )
        return list(value)
    return [value] * len(names)


def check_compile_arguments(loss: Any, metrics: Any) -> None:
    """Reject a missing loss and a metrics argument of the wrong type before anything changes."""
    if loss is None:
        raise ValueError(
            "`compile` needs a loss, e.g. loss='binary_crossentropy'. Received: loss=None"
        )
    if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
        if not (isinstance(metrics, (str, bytes)) or callable(metrics)):
            raise TypeError(
                f"`metrics` must be a list of metric names or functions. Received: {metrics!r}"
            )


def resolve(
    options: CompileOptions, output_names: Sequence[str], output_shapes: Sequence[Any] | None
) -> list[OutputTraining]:
    """Turn ``compile``'s identifiers into the training of each output that has a loss."""
    from minidl import losses
    from minidl import metrics as metrics_module

    names = list(output_names)
    several = len(names) > 1
    loss_list = per_output(options.loss, names, "loss", None)
    weights = per_output(
        1.0 if options.loss_weights is None else options.loss_weights,
        names,
        "loss_weights",
        1.0,
    )
    metrics = options.metrics
    if isinstance(metrics, (str, bytes)) or callable(metrics):
        metrics = [metrics]
    metric_lists = per_output(metrics if metrics is not None else [], names, "metrics", [])
    result = []
    for index, name in enumerate(names):
        if loss_list[index] is None:
            continue
        loss_function = losses.get(loss_list[index])
        loss_name = getattr(loss_function, "__name__", "loss")
        weight = weights[index]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(
                f"Loss weights must be numbers. Received: loss_weights for {name!r} = {weight!r}"
            )
        identifiers = metric_lists[index]
        if isinstance(identifiers, (str, bytes)) or callable(identifiers):
            identifiers = [identifiers]
        shape = output_shapes[index] if output_shapes is not None else None
        functions = [metrics_module.get(m, loss_name, shape) for m in identifiers]
        metric_names = [f"{name}_{_name_of(m)}" if several else _name_of(m) for m in identifiers]
        result.append(
            OutputTraining(
                index, name, loss_function, loss_name, float(weight), functions, metric_names
            )
        )
    if not result:
        raise ValueError(
            f"No output has a loss, so there is nothing to train. Received: loss={options.loss!r}"
        )
    return result


def metrics_names(outputs: Sequence[OutputTraining], several: bool) -> list[str]:
    """``["loss", <output>_loss..., metric names...]`` in Keras 2's order."""
    names = ["loss"]
    if several:
        names += [f"{out.name}_loss" for out in outputs]
    for out in outputs:
        names += out.metric_names
    return names


def reduce_weighted(values: Any, sample_weight: Any) -> Any:
    """Mean of loss ``values`` times ``sample_weight`` over every axis (Keras' rule).

    Axes of ``values`` beyond those of ``sample_weight`` are averaged first, so a per-sample
    weight ``(N,)`` and a per-position weight such as ``(N, H, W)`` both work.
    """
    rank, weight_rank = K.ndim(values), K.ndim(sample_weight)
    if rank == 0:
        return values * K.mean(sample_weight)
    if rank < weight_rank:
        raise ValueError(
            f"`sample_weight` of rank {weight_rank} has more axes than the loss values "
            f"(rank {rank}); give one weight per sample or per loss position. Received: "
            f"sample_weight of rank {weight_rank}"
        )
    if rank > weight_rank:
        values = K.mean(values, axis=tuple(range(weight_rank, rank)))
    return K.mean(values * sample_weight)
