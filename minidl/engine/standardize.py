"""Check data against a model's input and output shapes and bring labels to the loss's layout.

Mistakes are reported before any training step runs, in Keras-3 wording: what was expected,
then what was received, with a hint for the common ones (integer labels given to
``categorical_crossentropy``, text labels, arrays of different lengths).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl.engine.data_adapters import as_numeric_array, check_same_length

__all__ = ["check_same_length"]

SPARSE_LOSS = "sparse_categorical_crossentropy"
KNOWN_LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    SPARSE_LOSS,
    "mean_squared_error",
    "mean_absolute_error",
)


def _shape_text(shape: Sequence[int | None]) -> str:
    return str(tuple(shape)).replace(",)", ")") if len(shape) == 1 else str(tuple(shape))


def _compatible(given: Sequence[int | None], expected: Sequence[int | None]) -> bool:
    return len(given) == len(expected) and all(
        e is None or g is None or g == e for g, e in zip(given, expected)
    )


def standardize_x(
    x: Any, input_shape: Sequence[int | None], model_name: str, index: int = 0
) -> np.ndarray:
    """Return ``x`` as a numeric array matching ``input_shape`` (batch axis included)."""
    array = as_numeric_array(x, "x")
    if array.ndim == len(input_shape) - 1 and input_shape[-1] == 1:
        array = array[..., None]  # (n,) for a model taking (None, 1), as Keras allows
    if not _compatible(array.shape[1:], input_shape[1:]) or array.ndim != len(input_shape):
        raise ValueError(
            f'Input {index} of model "{model_name}" is incompatible with the model: expected '
            f"shape={_shape_text(input_shape)}, found shape={_shape_text(array.shape)}"
        )
    return array


def split_by_name(data: Any, names: Sequence[str], what: str, model_name: str) -> list[Any]:
    """One entry per name from a single array, a list in order, or a dict keyed by name.

    Raises:
        ValueError: for a dict whose keys differ from ``names`` or a list of another length.
    """
    names = list(names)
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if unknown or missing:
            raise ValueError(
                f"The keys of `{what}` must be the names of model {model_name!r}'s "
                f"{'inputs' if what == 'x' else 'outputs'}: {names}. Received: keys "
                f"{sorted(map(str, data))} (missing {missing}, unknown {unknown})"
            )
        return [data[n] for n in names]
    several_arrays = isinstance(data, (list, tuple)) and all(
        hasattr(item, "shape") or item is None for item in data
    )
    if len(names) == 1:
        if several_arrays and len(data) == 1:
            return [data[0]]
        return [data]
    if not several_arrays or len(data) != len(names):
        count = len(data) if several_arrays else 1
        raise ValueError(
            f"Model {model_name!r} has {len(names)} {'inputs' if what == 'x' else 'outputs'} "
            f"{names}: pass `{what}` as a list of {len(names)} arrays or a dict keyed by these "
            f"names. Received: {count} array{'s' if count != 1 else ''}"
        )
    return list(data)


def target_shape(loss_name: str, output_shape: Sequence[int | None]) -> tuple[int | None, ...]:
    """Shape (batch axis None) the step expects ``y`` to have for ``loss_name``."""
    if loss_name == SPARSE_LOSS:
        return (None, *tuple(output_shape[1:-1]))
    return (None, *tuple(output_shape[1:]))


def standardize_y(y: Any, output_shape: Sequence[int | None], loss_name: str) -> np.ndarray:
    """Return labels as an array laid out as ``target_shape`` says (custom losses: as given)."""
    array = as_numeric_array(y, "y")
    if loss_name not in KNOWN_LOSSES:
        if array.ndim == 0:
            raise ValueError(f"`y` must have a batch axis. Received: y of shape {array.shape}")
        return array
    out = tuple(output_shape)
    if loss_name == SPARSE_LOSS:
        return _standardize_sparse(array, out)
    if loss_name == "categorical_crossentropy" and out[-1] == 1:
        raise ValueError(
            "`categorical_crossentropy` needs one output unit per class (at least 2); with a "
            "single output unit its loss is always 0. For two classes use one sigmoid unit "
            "with loss='binary_crossentropy', or a softmax over 2 units. "
            f"Received: model output shape {_shape_text(out)}"
        )
    if array.ndim == len(out) - 1 and out[-1] == 1:
        array = array[..., None]  # (n,) labels for a (None, 1) output
    if _compatible(array.shape[1:], out[1:]) and array.ndim == len(out):
        return array
    hint = ""
    if loss_name == "categorical_crossentropy" and array.ndim == len(out) - 1:
        hint = (
            f" `categorical_crossentropy` expects one-hot targets of shape "
            f"{_shape_text((len(array), *out[1:]))}: one-hot encode the labels "
            f"(e.g. np.eye({out[-1]})[y]) or use loss='sparse_categorical_crossentropy' "
            "for integer class labels."
        )
    elif loss_name == "categorical_crossentropy" and out[-1] != 1 and array.shape[-1] == 1:
        hint = (
            " These look like integer class labels: use "
            "loss='sparse_categorical_crossentropy' or one-hot encode them."
        )
    raise ValueError(
        f"Target array of shape {_shape_text(array.shape)} does not match the model output "
        f"shape {_shape_text(out)} for loss '{loss_name}'.{hint} "
        f"Received: y.shape={_shape_text(array.shape)}"
    )


def _standardize_sparse(array: np.ndarray, out: tuple[int | None, ...]) -> np.ndarray:
    if array.ndim == len(out) and array.shape[-1] == 1:
        array = array[..., 0]
    expected = (len(array), *out[1:-1])
    if array.ndim == len(out) and out[-1] is not None and array.shape[-1] == out[-1] > 1:
        raise ValueError(
            f"`sparse_categorical_crossentropy` expects integer class labels of shape "
            f"{_shape_text(expected)}, but y looks one-hot. Use "
            "loss='categorical_crossentropy' or pass y.argmax(axis=-1). "
            f"Received: y.shape={_shape_text(array.shape)}"
        )
    if not _compatible(array.shape[1:], out[1:-1]) or array.ndim != len(out) - 1:
        raise ValueError(
            f"`sparse_categorical_crossentropy` expects integer class labels of shape "
            f"{_shape_text(expected)} for a model output of shape {_shape_text(out)}. "
            f"Received: y.shape={_shape_text(array.shape)}"
        )
    classes = out[-1]
    if array.size and classes is not None:
        if np.any(array != np.round(array)) or array.min() < 0 or array.max() >= classes:
            raise ValueError(
                f"`sparse_categorical_crossentropy` labels must be whole numbers in "
                f"[0, {classes - 1}] for a model with {classes} outputs. Received: values "
                f"from {array.min()} to {array.max()}"
            )
    return array


def class_weight_to_sample_weight(y: np.ndarray, class_weight: dict[int, float]) -> np.ndarray:
    """Per-sample weights from ``{class_index: weight}`` (one-hot, binary or integer ``y``)."""
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"`class_weight` must be a dict mapping class index to weight. "
            f"Received: {type(class_weight).__name__}"
        )
    if y.ndim >= 2 and y.shape[-1] > 1:
        classes = np.argmax(y, axis=-1)
    else:
        classes = np.round(y.reshape(len(y), -1)[:, 0]).astype("int64")
    missing = sorted(set(np.unique(classes).tolist()) - set(class_weight))
    if missing:
        raise ValueError(
            f"`class_weight` must give a weight for every class in y. "
            f"Received: no weight for classes {missing}"
        )
    lookup = np.vectorize(lambda c: float(class_weight[c]), otypes=["float32"])
    return lookup(classes).reshape(len(y))


def standardize_sample_weight(
    sample_weight: Any, num_samples: int, position_shape: Sequence[int] | None = None
) -> np.ndarray:
    """Return weights per sample ``(N,)``, or per loss position (``position_shape``).

    ``position_shape`` is the shape of a loss's values before averaging: the targets' shape
    without the class axis, e.g. ``(N, H, W)`` for a ``(N, H, W, C)`` output.
    """
    array = as_numeric_array(sample_weight, "sample_weight").astype("float32")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    per_position = (
        position_shape is not None
        and array.ndim > 1
        and tuple(array.shape) == tuple(position_shape)
    )
    if array.shape != (num_samples,) and not per_position:
        wanted = f" or one per position {tuple(position_shape)}" if position_shape else ""
        raise ValueError(
            f"`sample_weight` must hold one weight per sample ({num_samples},){wanted}. "
            f"Received: sample_weight.shape={array.shape}"
        )
    return array


def loss_position_shape(y: np.ndarray, loss_name: str) -> tuple[int, ...]:
    """Shape of a loss's values for targets ``y``: ``y.shape`` less the class axis."""
    return tuple(y.shape) if loss_name == SPARSE_LOSS else tuple(y.shape[:-1])
