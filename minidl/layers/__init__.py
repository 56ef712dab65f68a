"""Layers, and their (de)serialization by class name.

>>> from minidl import layers
>>> layer = layers.deserialize({"class_name": "Dense", "config": {"units": 3, "name": "out"}})
>>> layers.serialize(layer)["config"]["units"], layer.name
(3, 'out')
"""

from __future__ import annotations

from typing import Any

from minidl.layers.base import Layer, reset_layer_names, unique_layer_name
from minidl.layers.convolutional import (
    Conv2D,
    Conv2DTranspose,
    Convolution2D,
    Convolution2DTranspose,
    Deconvolution2D,
    ZeroPadding2D,
)
from minidl.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
from minidl.layers.lambda_layer import Lambda
from minidl.layers.merge import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from minidl.layers.normalization import BatchNormalization
from minidl.layers.pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from minidl.layers.reshaping import Cropping2D, UpSampling2D
from minidl.layers.spatial_dropout import SpatialDropout2D

__all__ = [
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Conv2DTranspose",
    "Convolution2D",
    "Convolution2DTranspose",
    "Cropping2D",
    "Deconvolution2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "Lambda",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Reshape",
    "SpatialDropout2D",
    "Subtract",
    "UpSampling2D",
    "ZeroPadding2D",
    "add",
    "average",
    "concatenate",
    "deserialize",
    "get_layer_class",
    "maximum",
    "minimum",
    "multiply",
    "reset_layer_names",
    "serialize",
    "subtract",
    "unique_layer_name",
]

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        InputLayer,
        Dense,
        Activation,
        Dropout,
        Flatten,
        Reshape,
        Conv2D,
        Conv2DTranspose,
        ZeroPadding2D,
        UpSampling2D,
        Cropping2D,
        Add,
        Subtract,
        Multiply,
        Average,
        Maximum,
        Minimum,
        Concatenate,
        Lambda,
        SpatialDropout2D,
        MaxPooling2D,
        AveragePooling2D,
        GlobalAveragePooling2D,
        GlobalMaxPooling2D,
        BatchNormalization,
    )
}
LAYER_ALIASES = {
    "Convolution2D": "Conv2D",
    "Deconvolution2D": "Conv2DTranspose",
    "Convolution2DTranspose": "Conv2DTranspose",
    "MaxPool2D": "MaxPooling2D",
    "AvgPool2D": "AveragePooling2D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
}


def get_layer_class(class_name: str) -> type[Layer]:
    """Return the layer class called ``class_name`` (Keras aliases such as MaxPool2D too).

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    cls = LAYER_CLASSES.get(LAYER_ALIASES.get(class_name, class_name))
    if cls is None:
        raise ValueError(
            f"Unknown layer class {class_name!r}. Valid classes: "
            f"{', '.join(sorted(LAYER_CLASSES))}. Received: class_name={class_name!r}"
        )
    return cls


def serialize(layer: Layer) -> dict[str, Any]:
    """Return ``{"class_name", "config"}`` describing ``layer`` (no weights)."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``serialize``'s output.

    Raises:
        ValueError: when ``spec`` lacks ``class_name`` or names an unknown class.
    """
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(
            f'A layer description must be a dict with "class_name" and "config". Received: {spec!r}'
        )
    return get_layer_class(spec["class_name"]).from_config(dict(spec.get("config") or {}))
