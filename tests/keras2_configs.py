"""Pieces of the configs Keras 2.2.4's ``get_config`` writes, shared by the tests that load them."""

from __future__ import annotations

import copy
from typing import Any

GLOROT_UNIFORM = {  # Keras 2's default kernel initializer, as it serialises it
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None},
}
ZEROS = {"class_name": "Zeros", "config": {}}


def kernel_layer_config(name: str, activation: str, **fields: Any) -> dict[str, Any]:
    """A Dense or convolution config with Keras 2's defaults for the kernel and bias keys.

    ``fields`` are the layer's own keys (``units``, ``filters``, ...); every default key
    Keras 2.2.4 writes is present (initializers, no regularizers, no constraints). The
    result is a fresh copy: a test may change it in place.
    """
    config = {
        "name": name,
        "trainable": True,
        **fields,
        "activation": activation,
        "use_bias": True,
        "kernel_initializer": GLOROT_UNIFORM,
        "bias_initializer": ZEROS,
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }
    return copy.deepcopy(config)


def conv_layer_config(name: str, activation: str, filters: int, **geometry: Any) -> dict[str, Any]:
    """A channels-last Conv2D-like config: ``kernel_layer_config`` with ``filters`` and the
    ``geometry`` keys (``kernel_size``, ``strides``, ``padding``...), tuples written as lists."""
    fields = {key: list(v) if isinstance(v, tuple) else v for key, v in geometry.items()}
    return kernel_layer_config(
        name, activation, filters=filters, **fields, data_format="channels_last"
    )
