"""U-Net (Ronneberger, Fischer & Brox, 2015) for 2-D segmentation, as a functional model.

Each level of the encoder is two 3x3 convolutions (each followed by batch normalisation when
``batch_norm`` and a ReLU) and a 2x2 max-pool; the decoder upsamples by 2 (a 2x2 transposed
convolution, or nearest-neighbour repetition followed by a 3x3 convolution), joins the
encoder's features of the same size and applies two 3x3 convolutions. Padding is ``"same"``,
so the output has the input's height and width. Layer names say where a layer sits:
``enc1_conv1``, ``enc1_bn1``, ``enc1_relu1``, ``enc1_pool``, ``bottleneck_conv1``,
``dec1_up``, ``dec1_concat``, ... and the output layer ``mask``.

>>> model = UNet((16, 16, 1), depth=2, filters=4)
>>> model.output_shape, [layer.name for layer in model.layers][1:5]
((None, 16, 16, 1), ['enc1_conv1', 'enc1_bn1', 'enc1_relu1', 'enc1_conv2'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minidl.layers import (
    Activation,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Conv2DTranspose,
    Input,
    MaxPooling2D,
    UpSampling2D,
)
from minidl.models import Model

UPSAMPLING_MODES = ("transpose", "nearest")
# Keras' default 0.99 leaves the moving statistics far from the data after the few hundred
# steps a small segmentation set gives (0.99**200 = 13% of the initial values remain).
BN_MOMENTUM = 0.9


def _check_arguments(
    input_shape: Sequence[int | None], classes: int, depth: int, filters: int, upsampling: str
) -> tuple[int | None, int | None, int | None]:
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            "UNet needs input_shape=(height, width, channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )
    for name, value in (("classes", classes), ("depth", depth), ("filters", filters)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"UNet needs `{name}` >= 1. Received: {name}={value!r}")
    if upsampling not in UPSAMPLING_MODES:
        raise ValueError(
            f"UNet's `upsampling` must be one of {', '.join(UPSAMPLING_MODES)}. "
            f"Received: upsampling={upsampling!r}"
        )
    height, width, channels = tuple(input_shape)
    factor = 2**depth
    for size in (height, width):
        if size is not None and size % factor:
            raise ValueError(
                f"UNet with depth={depth} needs a height and width divisible by {factor}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
    return height, width, channels


def _conv_block(x: Any, filters: int, prefix: str, batch_norm: bool) -> Any:
    """Two 3x3 convolutions, each followed by (batch normalisation and) a ReLU."""
    for number in (1, 2):
        x = Conv2D(
            filters,
            3,
            padding="same",
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{prefix}_conv{number}",
        )(x)
        if batch_norm:
            x = BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn{number}")(x)
        x = Activation("relu", name=f"{prefix}_relu{number}")(x)
    return x


def UNet(  # noqa: N802 - a model constructor, named like Keras applications
    input_shape: Sequence[int | None],
    classes: int = 1,
    depth: int = 4,
    filters: int = 32,
    batch_norm: bool = True,
    upsampling: str = "transpose",
    name: str = "unet",
) -> Model:
    """Build a U-Net for channels-last images of ``input_shape`` ``(height, width, channels)``.

    Args:
        input_shape: height and width must be divisible by ``2 ** depth``.
        classes: 1 gives a sigmoid mask (binary segmentation, for ``dice_loss`` or
            ``binary_crossentropy``); more gives per-pixel softmax scores over the classes.
        depth: number of 2x2 poolings (the encoder has ``depth`` levels above the bottleneck).
        filters: channels of the first level; each level down doubles them.
        batch_norm: batch normalisation after each convolution (the convolutions then have
            no bias), with momentum 0.9 so that the moving statistics used by ``predict``
            settle within a few hundred steps.
        upsampling: ``"transpose"`` (2x2 transposed convolution with stride 2) or
            ``"nearest"`` (repeat pixels, then a 3x3 convolution).
        name: the model's name.

    Returns:
        A ``Model`` from an ``Input`` named ``image`` to the output layer ``mask``, shaped
        ``(batch, height, width, classes)``.

    Raises:
        ValueError: for a size not divisible by ``2 ** depth``, a non-positive ``classes``,
            ``depth`` or ``filters``, or an unknown ``upsampling``.
    """
    _check_arguments(input_shape, classes, depth, filters, upsampling)
    image = Input(shape=tuple(input_shape), name="image")
    x = image
    skips = []
    for level in range(1, depth + 1):
        x = _conv_block(x, filters * 2 ** (level - 1), f"enc{level}", batch_norm)
        skips.append(x)
        x = MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = _conv_block(x, filters * 2**depth, "bottleneck", batch_norm)
    for level in range(depth, 0, -1):
        width = filters * 2 ** (level - 1)
        if upsampling == "transpose":
            x = Conv2DTranspose(width, 2, strides=2, padding="same", name=f"dec{level}_up")(x)
        else:
            x = UpSampling2D(2, interpolation="nearest", name=f"dec{level}_up")(x)
            x = Conv2D(width, 3, padding="same", activation="relu", name=f"dec{level}_upconv")(x)
        x = Concatenate(name=f"dec{level}_concat")([x, skips[level - 1]])
        x = _conv_block(x, width, f"dec{level}", batch_norm)
    activation = "sigmoid" if classes == 1 else "softmax"
    mask = Conv2D(classes, 1, activation=activation, name="mask")(x)
    return Model(inputs=image, outputs=mask, name=name)
