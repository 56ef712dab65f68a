"""Offline stand-ins for ``keras.datasets`` (mnist, cifar10, reuters) used by the Keras 2 ports.

minidl never downloads data, so the ported examples read synthetic data sets with the shapes,
dtypes and label ranges of the real ones: a class-dependent pattern plus noise, learnable in a
few epochs. ``MINIDL_EXAMPLE_SAMPLES`` sets the number of training samples (default 2000; the
test split is a quarter of that). Each loader is seeded, so runs repeat.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np


def _sizes() -> tuple[int, int]:
    train = int(os.environ.get("MINIDL_EXAMPLE_SAMPLES", "2000"))
    return train, max(train // 4, 1)


def _images(count: int, shape: tuple[int, ...], classes: int, seed: int):
    """uint8 images: each class brightens its own block of rows, on top of noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=count)
    images = rng.integers(0, 90, size=(count, *shape)).astype(np.int32)
    band = max(shape[0] // classes, 1)
    for index, label in enumerate(labels):
        start = (label * band) % shape[0]
        images[index, start : start + band] += 150
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def _image_loader(shape: tuple[int, ...], classes: int, column_labels: bool):
    def load_data():
        train, test = _sizes()
        x_train, y_train = _images(train, shape, classes, seed=1)
        x_test, y_test = _images(test, shape, classes, seed=2)
        if column_labels:  # CIFAR-10's labels come as a column
            y_train, y_test = y_train[:, None], y_test[:, None]
        return (x_train, y_train), (x_test, y_test)

    return load_data


def _reuters_load_data(num_words: int | None = None, test_split: float = 0.2, seed: int = 113):
    """Lists of word indices (1 = start marker) and 46 topic labels, as ``reuters.load_data``."""
    train, _ = _sizes()
    total = int(train / (1 - test_split))
    rng = np.random.default_rng(seed)
    vocabulary = num_words or 10000
    labels = rng.integers(0, 46, size=total)
    sequences = []
    for label in labels:
        length = int(rng.integers(20, 120))
        topic_words = 4 + label * 10 + rng.integers(0, 10, size=length // 3)
        common = rng.integers(4, vocabulary, size=length - len(topic_words))
        words = np.concatenate([topic_words % vocabulary, common])
        rng.shuffle(words)
        sequences.append([1, *words.tolist()])
    split = int(total * (1 - test_split))
    x, y = np.array(sequences, dtype=object), labels.astype(np.int64)
    return (x[:split], y[:split]), (x[split:], y[split:])


mnist = SimpleNamespace(load_data=_image_loader((28, 28), 10, column_labels=False))
cifar10 = SimpleNamespace(load_data=_image_loader((32, 32, 3), 10, column_labels=True))
reuters = SimpleNamespace(load_data=_reuters_load_data)
