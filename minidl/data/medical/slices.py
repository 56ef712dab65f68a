"""Masks checked against their images, and batches of 2-D slices from volume/mask pairs.

``SliceSequence`` is a Keras-``Sequence``-like object: ``model.fit(SliceSequence(...))``
trains on windowed ``(batch, rows, cols, 1)`` slices and their ``(batch, rows, cols, 1)``
masks, reshuffled every epoch.

>>> import numpy as np
>>> ct = Volume(np.full((3, 4, 4), -850.0, dtype="float32"))
>>> lungs = Volume(np.ones((3, 4, 4), dtype="uint8"))
>>> x, y = SliceSequence([ct], [lungs], batch_size=2, shuffle=False)[0]
>>> x.shape, y.shape, round(float(x.max()), 4), float(y.min())
((2, 4, 4, 1), (2, 4, 4, 1), 0.3333, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl.data.medical.transforms import PairedAugmenter
from minidl.data.medical.volume import Volume
from minidl.data.medical.volume import window as apply_window

Window = str | tuple[float, float] | None


def source_name(item: Any, default: str) -> str:
    """The file a Volume was read from (``meta["path"]``), else ``default``."""
    if isinstance(item, Volume) and item.meta.get("path"):
        return str(item.meta["path"])
    return default


def binary_mask(mask: Any, name: str = "mask", threshold: float | None = None) -> np.ndarray:
    """Return ``mask`` as uint8 0/1, checking that it holds only 0 and 1.

    Args:
        mask: an array or ``Volume`` of labels.
        name: the file (or label) named in the error.
        threshold: when given, voxels above it become 1 and the rest 0 (for masks stored as
            0/255, use 127), instead of requiring 0/1 values.

    Raises:
        ValueError: naming ``name``, when a mask holds values other than 0 and 1 (and no
            threshold was given), or NaN.
    """
    array = np.asarray(mask.array if isinstance(mask, Volume) else mask)
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"The mask {name} holds NaN values. Received: a {array.dtype} mask")
    if threshold is not None:
        return (array > threshold).astype("uint8")
    if array.dtype == bool:
        return array.astype("uint8")
    values = np.unique(array)
    if not np.isin(values, (0, 1)).all():
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise ValueError(
            f"The mask {name} must hold only 0 and 1 (or pass a threshold, e.g. 127 for 0/255 "
            f"masks). Received: values {shown}"
        )
    return array.astype("uint8")


def check_pair(image: Any, mask: Any, image_name: str = "image", mask_name: str = "mask") -> None:
    """Raise ValueError naming both files when an image and its mask differ in shape."""
    image_shape = np.shape(image.array if isinstance(image, Volume) else image)
    mask_shape = np.shape(mask.array if isinstance(mask, Volume) else mask)
    if image_shape != mask_shape:
        raise ValueError(
            f"The image {image_name} and its mask {mask_name} must have the same shape. "
            f"Received: image shape {image_shape} and mask shape {mask_shape}"
        )


class SliceSequence:
    """Shuffled batches of 2-D slices (along the first axis) from image/mask volume pairs.

    Args:
        images: Volumes (or 3-D arrays ``[slice, row, col]``), in Hounsfield units when a
            window is used.
        masks: one mask per image, same shape, holding 0 and 1 (see ``mask_threshold``).
        batch_size: slices per batch; the last batch may be smaller.
        window: a preset name (``"lung"``), a ``(level, width)`` pair, or None to use the
            values as they are.
        shuffle: reshuffle the slices at the end of every epoch.
        augment: a ``PairedAugmenter`` applied to each slice and its mask.
        mask_threshold: passed to ``binary_mask``.
        seed: seeds the shuffling.

    Raises:
        ValueError: naming the files, for pairs of different shapes, non-binary masks, or
            lists of different lengths.
    """

    def __init__(
        self,
        images: Sequence[Any],
        masks: Sequence[Any],
        batch_size: int = 16,
        window: Window = "lung",
        shuffle: bool = True,
        augment: PairedAugmenter | None = None,
        mask_threshold: float | None = None,
        seed: int | None = None,
    ) -> None:
        if isinstance(images, (Volume, np.ndarray)):
            images, masks = [images], [masks]
        if len(images) != len(masks):
            raise ValueError(
                f"Give one mask per image. Received: {len(images)} images and {len(masks)} masks"
            )
        if int(batch_size) < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size!r}")
        self.images, self.masks = [], []
        for index, (image, mask) in enumerate(zip(images, masks)):
            image_name = source_name(image, f"images[{index}]")
            mask_name = source_name(mask, f"masks[{index}]")
            check_pair(image, mask, image_name, mask_name)
            array = np.asarray(image.array if isinstance(image, Volume) else image)
            if array.ndim != 3:
                raise ValueError(
                    f"The image {image_name} must be a 3-D volume [slice, row, col]. "
                    f"Received: shape {array.shape}"
                )
            if window is not None:
                levels = (window,) if isinstance(window, str) else tuple(window)
                array = apply_window(array, *levels)
            self.images.append(array.astype("float32", copy=False))
            self.masks.append(binary_mask(mask, mask_name, mask_threshold))
        sizes = {a.shape[1:] for a in self.images}
        if len(sizes) > 1:
            raise ValueError(
                "All volumes must share one slice size to be batched; resample or resize them "
                f"first. Received: slice sizes {sorted(sizes)}"
            )
        self.index = [(v, s) for v, a in enumerate(self.images) for s in range(a.shape[0])]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(self.index))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.index) / self.batch_size)

    def __getitem__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= batch < len(self):
            raise IndexError(f"Batch index out of range. Received: {batch} (length {len(self)})")
        chosen = self.order[batch * self.batch_size : (batch + 1) * self.batch_size]
        xs, ys = [], []
        for position in chosen:
            volume, plane = self.index[position]
            image, mask = self.images[volume][plane], self.masks[volume][plane]
            if self.augment is not None:
                image, mask = self.augment(image, mask)
            xs.append(image)
            ys.append(mask)
        x = np.stack(xs)[..., None].astype("float32", copy=False)
        return x, np.stack(ys)[..., None].astype("float32")

    def on_epoch_end(self) -> None:
        """Reshuffle the slices for the next epoch."""
        if self.shuffle:
            self.rng.shuffle(self.order)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All slices and masks in order (no augmentation), for ``evaluate``/``predict``."""
        x = np.concatenate(self.images)[..., None]
        return x, np.concatenate(self.masks)[..., None].astype("float32")
