"""Keras 2's ``keras.preprocessing.image``: augmentation, and images to arrays and back.

>>> import numpy as np
>>> img = array_to_img(np.array([[[0.0], [2.0]]]))
>>> img.mode, img.size, img_to_array(img).ravel().tolist()
('L', (2, 1), [0.0, 255.0])
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from PIL import Image

from minidl.data import image as _image
from minidl.data.augmentation import ImageDataGenerator
from minidl.data.image import DirectoryIterator

__all__ = [
    "DirectoryIterator",
    "ImageDataGenerator",
    "array_to_img",
    "img_to_array",
    "load_img",
    "save_img",
]

_CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _check_data_format(data_format: str | None) -> str:
    if data_format is None:
        from minidl import backend as K

        return K.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def load_img(
    path: str | os.PathLike,
    grayscale: bool = False,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
) -> Image.Image:
    """Open an image file as a Pillow image in ``color_mode``, resized to ``(h, w)``.

    ``grayscale=True`` is Keras 2's older spelling of ``color_mode="grayscale"`` (it warns).
    """
    if grayscale:
        warnings.warn(
            'load_img: `grayscale` is deprecated; use color_mode="grayscale".',
            DeprecationWarning,
            stacklevel=2,
        )
        color_mode = "grayscale"
    return _image.load_img(path, color_mode, target_size, interpolation)


def img_to_array(
    img: Image.Image, data_format: str | None = None, dtype: str = "float32"
) -> np.ndarray:
    """A Pillow image as a ``(height, width, channels)`` array (``channels_first`` moves it)."""
    data_format = _check_data_format(data_format)
    array = _image.img_to_array(img, dtype=dtype)
    return array.transpose(2, 0, 1) if data_format == "channels_first" else array


def array_to_img(
    x: Any, data_format: str | None = None, scale: bool = True, dtype: str = "float32"
) -> Image.Image:
    """A Pillow image from a 3-D array; ``scale`` maps the array's range onto 0..255."""
    data_format = _check_data_format(data_format)
    array = np.array(x, dtype=dtype)
    if array.ndim != 3:
        raise ValueError(
            "Expected an image array of rank 3 (one image), e.g. (height, width, channels). "
            f"Received: an array of shape {array.shape}"
        )
    if data_format == "channels_first":
        array = array.transpose(1, 2, 0)
    if array.shape[2] not in _CHANNEL_MODES:
        raise ValueError(
            f"An image needs 1, 3 or 4 channels. Received: an array of shape {array.shape}"
        )
    if scale:
        array = array - array.min()
        peak = array.max()
        if peak != 0:
            array = array / peak
        array = array * 255
    mode = _CHANNEL_MODES[array.shape[2]]
    pixels = np.clip(np.rint(array), 0, 255).astype("uint8")
    return Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels)


def save_img(
    path: str | os.PathLike,
    x: Any,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Write a 3-D array to an image file (see ``array_to_img``)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    img.save(path, format=file_format, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "NumpyArrayIterator":  # built with the generator's flow()
        from minidl.data.array_iterator import NumpyArrayIterator

        return NumpyArrayIterator
    raise AttributeError(f"module 'minidl.preprocessing.image' has no attribute {name!r}")
