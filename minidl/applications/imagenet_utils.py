"""ImageNet input preprocessing and decoding of 1000-way predictions, as Keras does them.

>>> import numpy as np
>>> pixel = np.array([[[255.0, 0.0, 10.0]]])   # one RGB pixel
>>> preprocess_input(pixel).tolist()             # BGR order, ImageNet mean removed
[[[-93.93900299072266, -116.77899932861328, 131.32000732421875]]]
>>> preds = np.zeros((1, 1000)); preds[0, 281] = 0.9; preds[0, 285] = 0.1
>>> decode_predictions(preds, top=2)
[[('n02123045', 'tabby', 0.9), ('n02124075', 'Egyptian_cat', 0.1)]]
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import numpy as np

# ImageNet channel means in BGR order (the Caffe convention VGG16's weights were trained with).
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype="float32")
TORCH_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype="float32")
TORCH_STD_RGB = np.array([0.229, 0.224, 0.225], dtype="float32")
NUM_IMAGENET_CLASSES = 1000


def preprocess_input(x: Any, mode: str = "caffe", data_format: str | None = None) -> np.ndarray:
    """Prepare RGB images (0-255) for an ImageNet model; returns a new float32 array.

    Args:
        x: array whose last axis holds R, G, B (one image ``(h, w, 3)`` or a batch
            ``(n, h, w, 3)``); it is not modified.
        mode: ``"caffe"`` (VGG16: RGB -> BGR, then subtract the ImageNet mean per channel),
            ``"tf"`` (scale to [-1, 1]) or ``"torch"`` (scale to [0, 1], then normalise with
            the ImageNet mean and standard deviation).
        data_format: only ``"channels_last"`` (or None) -- minidl images are channels-last.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"`data_format` must be 'channels_last' (minidl images are channels-last). "
            f"Received: data_format={data_format!r}"
        )
    array = np.array(x, dtype="float32")  # a copy: the caller's array is left alone
    if array.ndim < 1 or array.shape[-1] != 3:
        raise ValueError(
            "`preprocess_input` expects RGB images with 3 channels on the last axis, such as "
            f"(224, 224, 3) or (batch, 224, 224, 3). Received: an array of shape {array.shape}"
        )
    if mode == "caffe":
        return array[..., ::-1] - CAFFE_MEAN_BGR
    if mode == "tf":
        return array / 127.5 - 1.0
    if mode == "torch":
        return (array / 255.0 - TORCH_MEAN_RGB) / TORCH_STD_RGB
    raise ValueError(f"`mode` must be 'caffe', 'tf' or 'torch'. Received: mode={mode!r}")


@functools.cache
def imagenet_class_index() -> dict[int, tuple[str, str]]:
    """The 1000 ImageNet classes: index -> ``(wnid, name)``, from the file shipped with minidl."""
    text = resources.files("minidl.data").joinpath("resources/imagenet_class_index.json")
    raw = json.loads(text.read_text(encoding="utf-8"))
    return {int(key): (value[0], value[1]) for key, value in raw.items()}


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` most likely ImageNet classes of each sample, as ``(wnid, name, score)``.

    Args:
        preds: ``(samples, 1000)`` array of class scores (e.g. ``VGG16`` output).
        top: how many classes to return per sample, most likely first.
    """
    array = np.asarray(preds)
    if array.ndim != 2 or array.shape[1] != NUM_IMAGENET_CLASSES:
        raise ValueError(
            "`decode_predictions` expects a batch of ImageNet predictions: an array of shape "
            f"(samples, {NUM_IMAGENET_CLASSES}). Received: an array of shape {array.shape}"
        )
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= NUM_IMAGENET_CLASSES:
        raise ValueError(
            f"`top` must be an integer from 1 to {NUM_IMAGENET_CLASSES}. Received: top={top!r}"
        )
    index = imagenet_class_index()
    decoded = []
    for row in array:
        best = np.argsort(-row, kind="stable")[:top]
        decoded.append([(*index[int(i)], float(row[i])) for i in best])
    return decoded
