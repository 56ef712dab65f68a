"""VGG16 (Simonyan & Zisserman, 2014) with Keras' layer names, and the fast.ai fine-tuning step.

``VGG16()`` builds the 16-layer network as a ``Sequential`` whose layers are named exactly as
in Keras (``block1_conv1`` ... ``block5_pool``, ``flatten``, ``fc1``, ``fc2``,
``predictions``), so Keras' published ImageNet weight files load into it. minidl never
downloads anything: pass the file's path as ``weights``, or put it where
``weights="imagenet"`` looks (see ``imagenet_weight_dirs``).

>>> model = vgg_like(input_shape=(32, 32, 3), widths=(2, 2, 2, 2, 2), dense_units=4, classes=3)
>>> [layer.name for layer in model.layers][:3], model.output_shape
(['block1_conv1', 'block1_conv2', 'block1_pool'], (None, 3))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from minidl import backend as K
from minidl.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401 - Keras 2 paths
from minidl.applications.keras_weights import load_keras_h5_weights
from minidl.layers import (
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Input,
    MaxPooling2D,
)

WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_FILE_NO_TOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
MIN_IMAGE_SIZE = 32


def imagenet_weight_dirs() -> list[Path]:
    """Folders searched by ``weights="imagenet"``: ``$MINIDL_HOME/models``, ``~/.keras/models``."""
    return [K.config_path().parent / "models", Path.home() / ".keras" / "models"]


def _find_imagenet_file(include_top: bool) -> str:
    filename = WEIGHTS_FILE if include_top else WEIGHTS_FILE_NO_TOP
    for folder in imagenet_weight_dirs():
        if (folder / filename).is_file():
            return str(folder / filename)
    places = " or ".join(str(folder) for folder in imagenet_weight_dirs())
    raise ValueError(
        f"weights='imagenet' needs Keras' file {filename!r}, and minidl never downloads. Get it "
        "once (Keras' VGG16 downloads it to ~/.keras/models, or fetch it from the "
        "keras-applications GitHub releases), then put it in " + places + ", or pass its path: "
        "VGG16(weights='/path/to/" + filename + "'). Received: weights='imagenet' and no such file."
    )


def _check_input_shape(
    input_shape: Sequence[int | None] | None, include_top: bool, pretrained: bool
) -> tuple[int | None, ...]:
    if input_shape is None:
        return (224, 224, 3) if include_top else (None, None, 3)
    shape = tuple(None if d is None else int(d) for d in input_shape)
    if len(shape) != 3 or shape[-1] is None:
        raise ValueError(
            "`input_shape` must be (height, width, channels) with known channels. "
            f"Received: input_shape={input_shape!r}"
        )
    if pretrained and shape[-1] != 3:
        raise ValueError(
            f"Pretrained weights need 3 input channels. Received: input_shape={input_shape!r}"
        )
    if include_top and None in shape:
        raise ValueError(
            "With include_top=True the image size must be known (the classifier's Flatten "
            f"needs it). Received: input_shape={input_shape!r}"
        )
    if any(d is not None and d < MIN_IMAGE_SIZE for d in shape[:2]):
        raise ValueError(
            f"Images must be at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (five 2x2 poolings). "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def vgg_like(
    input_shape: Sequence[int | None] = (224, 224, 3),
    widths: Sequence[int] = VGG16_WIDTHS,
    convs_per_block: Sequence[int] = VGG16_CONVS_PER_BLOCK,
    dense_units: int = 4096,
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    kernel_initializer: str = "glorot_uniform",
    name: str = "vgg",
) -> Any:
    """A VGG-structured ``Sequential`` with any widths: VGG16's with the defaults.

    Blocks of 3x3 ``same`` ReLU convolutions (``widths[b]`` filters, ``convs_per_block[b]`` of
    them) each end with a 2x2 max-pool. The top is ``flatten``, ``fc1``, ``fc2`` (ReLU,
    ``dense_units`` each) and ``predictions``; without it, ``pooling`` may be ``"avg"`` or
    ``"max"`` (global pooling of the last block). ``kernel_initializer`` is used by every
    convolution and dense layer (Keras' VGG16 uses the default, ``"glorot_uniform"``; a deep
    stack trained from scratch starts faster with ``"he_uniform"``).
    """
    from minidl.models import Sequential

    if len(widths) != len(convs_per_block):
        raise ValueError(
            "`widths` and `convs_per_block` need one entry per block. Received: "
            f"widths={tuple(widths)}, convs_per_block={tuple(convs_per_block)}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    model = Sequential(name=name)
    model.add(Input(shape=tuple(input_shape)))
    for block, (width, convs) in enumerate(zip(widths, convs_per_block), start=1):
        for conv in range(1, convs + 1):
            model.add(
                Conv2D(
                    width,
                    (3, 3),
                    activation="relu",
                    padding="same",
                    name=f"block{block}_conv{conv}",
                )
            )
        model.add(MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool"))
    if include_top:
        model.add(Flatten(name="flatten"))
        for fc_name in ("fc1", "fc2"):
            model.add(
                Dense(
                    dense_units,
                    activation="relu",
                    kernel_initializer=kernel_initializer,
                    name=fc_name,
                )
            )
        model.add(
            Dense(
                classes,
                activation=classifier_activation,
                kernel_initializer=kernel_initializer,
                name="predictions",
            )
        )
    elif pooling == "avg":
        model.add(GlobalAveragePooling2D())
    elif pooling == "max":
        model.add(GlobalMaxPooling2D())
    return model


def VGG16(  # noqa: N802 - the Keras name
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
) -> Any:
    """The VGG16 network as a ``Sequential`` named ``vgg16``, optionally with ImageNet weights.

    Args:
        include_top: add ``flatten``, ``fc1``, ``fc2`` (4096 units) and the ``classes``-way
            ``predictions`` layer (138,357,544 parameters with 1000 classes; 14,714,688
            without the top).
        weights: None (random initialisation), ``"imagenet"`` (Keras' weight file, found in
            ``imagenet_weight_dirs()``) or the path of a Keras 2 HDF5 weight file.
        input_shape: ``(height, width, 3)``; default ``(224, 224, 3)`` with the top and
            ``(None, None, 3)`` (any size) without it. Sides must be at least 32.
        pooling: without the top, ``None`` (output of ``block5_pool``), ``"avg"`` or
            ``"max"`` (global pooling to one vector per image).
        classes: size of the ``predictions`` layer (1000 for ImageNet weights).
        classifier_activation: activation of ``predictions``.

    Inputs are RGB images passed through ``preprocess_input`` (BGR, ImageNet mean removed).
    """
    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise TypeError(f"`weights` must be None, 'imagenet' or a path. Received: {weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            f"ImageNet weights with include_top=True need classes=1000. Received: classes={classes}"
        )
    shape = _check_input_shape(input_shape, include_top, pretrained=weights is not None)
    path = _find_imagenet_file(include_top) if weights == "imagenet" else weights
    if path is not None and not os.path.isfile(path):  # before building 138M weights
        raise FileNotFoundError(f"No such weight file: {os.fspath(path)!r}")
    model = vgg_like(
        input_shape=shape,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name="vgg16",
    )
    if path is not None:
        load_keras_h5_weights(model, path)
    return model


def finetune(model: Any, num_classes: int, activation: str = "softmax") -> Any:
    """Swap the last layer for a new ``Dense(num_classes)`` and freeze all the other layers.

    This is the fast.ai lesson's ``Vgg16.finetune``: keep what the network learned, train only
    a new classifier for the new classes. Compile the model again afterwards. Returns ``model``.
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: {num_classes!r}")
    model.pop()
    for layer in model.layers:
        layer.trainable = False
    model.add(Dense(num_classes, activation=activation))
    return model
