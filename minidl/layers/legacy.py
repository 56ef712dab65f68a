"""Keras 1 argument names that Keras 2 still accepted, accepted here the same way (warned).

``Dense(output_dim=10, init="uniform")``, ``Convolution2D(32, 3, 3, border_mode="same",
subsample=(2, 2), dim_ordering="th")`` and the like are renamed to their Keras 2 arguments
with a ``UserWarning`` naming the Keras 2 call, as Keras 2 did.

>>> import warnings
>>> from minidl.layers import Dense
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     layer = Dense(output_dim=3, init="zeros")
>>> layer.units, type(layer.kernel_initializer).__name__, len(caught)
(3, 'Zeros', 1)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from minidl.layers.data_format import KERAS1_DIM_ORDERING

WEIGHT_RENAMES = {
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint",
    "b_constraint": "bias_constraint",
    "bias": "use_bias",
}
DENSE_RENAMES = {"output_dim": "units", **WEIGHT_RENAMES}
CONV_RENAMES = {
    "nb_filter": "filters",
    "subsample": "strides",
    "border_mode": "padding",
    "dim_ordering": "data_format",
    "atrous_rate": "dilation_rate",
    **WEIGHT_RENAMES,
}
POOL_RENAMES = {"border_mode": "padding", "dim_ordering": "data_format"}
DIM_ORDERING_RENAMES = {"dim_ordering": "data_format"}
DROPOUT_RENAMES = {"p": "rate"}
BATCHNORM_RENAMES = {"beta_init": "beta_initializer", "gamma_init": "gamma_initializer"}


def _convert_value(keras1_name: str, value: Any, layer: str) -> Any:
    if keras1_name == "dim_ordering":
        if value not in KERAS1_DIM_ORDERING:
            raise ValueError(
                f"{layer}: `dim_ordering` must be 'tf', 'th' or 'default'. Received: {value!r}"
            )
        return KERAS1_DIM_ORDERING[value]
    if keras1_name == "border_mode" and value not in ("valid", "same"):
        raise ValueError(
            f"{layer}: border_mode={value!r} has no Keras 2 equivalent (padding is 'valid' or "
            f"'same'). Received: border_mode={value!r}"
        )
    return value


def rename_keras1_arguments(
    layer: str, kwargs: dict[str, Any], renames: dict[str, str]
) -> dict[str, Any]:
    """Return ``kwargs`` with Keras 1 names replaced (one warning naming the Keras 2 call)."""
    found = [name for name in renames if name in kwargs]
    if not found:
        return kwargs
    converted = dict(kwargs)
    for old in found:
        new = renames[old]
        if new in converted:
            raise TypeError(f"{layer} got both `{old}` (Keras 1) and `{new}`. Give only `{new}`.")
        converted[new] = _convert_value(old, converted.pop(old), layer)
    call = ", ".join(f"{renames[old]}={converted[renames[old]]!r}" for old in found)
    warnings.warn(
        f"Update your `{layer}` call to the Keras 2 API: `{layer}({call})` "
        f"(Keras 1 names: {', '.join(found)}).",
        UserWarning,
        stacklevel=3,
    )
    return converted


def keras1_arguments(renames: dict[str, str], conv_positional: bool = False) -> Callable:
    """Class decorator: accept the Keras 1 keyword names in ``renames`` in ``__init__``.

    ``conv_positional`` also accepts ``Conv2D(filters, nb_row, nb_col, ...)`` and the
    ``nb_row`` / ``nb_col`` keywords, as Keras 2's ``Convolution2D(32, 3, 3)``.
    """

    def decorate(cls: type) -> type:
        init = cls.__init__

        @functools.wraps(init)
        def wrapped_init(self: Any, *args: Any, **kwargs: Any) -> None:
            name = type(self).__name__
            if conv_positional:
                args, kwargs = _conv_kernel_size(name, args, kwargs)
            init(self, *args, **rename_keras1_arguments(name, kwargs, renames))

        cls.__init__ = wrapped_init
        return cls

    return decorate


def _conv_kernel_size(
    layer: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(filters, nb_row, nb_col, ...)`` or ``nb_row=``/``nb_col=`` -> ``kernel_size``."""
    if "nb_row" in kwargs or "nb_col" in kwargs:
        if "nb_row" not in kwargs or "nb_col" not in kwargs or "kernel_size" in kwargs:
            raise TypeError(f"{layer}: give both `nb_row` and `nb_col` (Keras 1) or `kernel_size`.")
        kernel = (kwargs.pop("nb_row"), kwargs.pop("nb_col"))
        warnings.warn(
            f"Update your `{layer}` call to the Keras 2 API: `kernel_size={kernel}`.",
            UserWarning,
            stacklevel=4,
        )
        kwargs["kernel_size"] = kernel
        return args, kwargs
    if (
        len(args) >= 3
        and all(isinstance(a, int) and not isinstance(a, bool) for a in args[1:3])
        and "kernel_size" not in kwargs
    ):
        kernel = (args[1], args[2])
        warnings.warn(
            f"Update your `{layer}` call to the Keras 2 API: `{layer}({args[0]}, {kernel})`.",
            UserWarning,
            stacklevel=4,
        )
        return (args[0], kernel, *args[3:]), kwargs
    return args, kwargs
