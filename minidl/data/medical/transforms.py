"""Paired image/mask augmentation and resizing for 2-D slices.

One random geometric transform is drawn per call and applied to both the image (linear
interpolation) and the mask (nearest neighbour, so it keeps its labels).

>>> import numpy as np
>>> mask = np.zeros((8, 8), dtype="uint8"); mask[2:5, 3:7] = 1
>>> augment = PairedAugmenter(rotation_range=20, zoom_range=0.1, seed=0)
>>> image, new_mask = augment(mask.astype("float32"), mask)
>>> image.shape, new_mask.shape, sorted(np.unique(new_mask).tolist())
((8, 8), (8, 8), [0, 1])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.data.medical._deps import require


def _warp(array: np.ndarray, matrix: np.ndarray, order: int, shape: tuple[int, int]) -> np.ndarray:
    """Apply a 3x3 output->input pixel map to a (H, W) or (H, W, C) array."""
    ndimage = require("scipy.ndimage", "PairedAugmenter")
    source = array if order == 0 or array.dtype.kind == "f" else array.astype("float32")
    if array.ndim == 2:
        return ndimage.affine_transform(
            source,
            matrix[:2, :2],
            offset=matrix[:2, 2],
            output_shape=shape,
            order=order,
            mode="nearest",
        )
    channels = [_warp(source[..., c], matrix, order, shape) for c in range(array.shape[-1])]
    return np.stack(channels, axis=-1)


class PairedAugmenter:
    """Random rotation, shift, zoom and flips applied identically to an image and its mask.

    Args:
        rotation_range: rotations drawn uniformly from ``[-rotation_range, rotation_range]``
            degrees.
        shift_range: shifts up to this fraction of the height and width.
        zoom_range: scale factors drawn from ``[1 - zoom_range, 1 + zoom_range]``.
        horizontal_flip: flip left-right with probability 1/2.
        vertical_flip: flip up-down with probability 1/2.
        seed: seeds the generator, so a run draws the same transforms again.

    Raises:
        ValueError: for a negative range or a zoom range of 1 or more.
    """

    def __init__(
        self,
        rotation_range: float = 0.0,
        shift_range: float = 0.0,
        zoom_range: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        seed: int | None = None,
    ) -> None:
        for name, value in (
            ("rotation_range", rotation_range),
            ("shift_range", shift_range),
            ("zoom_range", zoom_range),
        ):
            if not float(value) >= 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
        if zoom_range >= 1:
            raise ValueError(f"`zoom_range` must be below 1. Received: zoom_range={zoom_range!r}")
        self.rotation_range = float(rotation_range)
        self.shift_range = float(shift_range)
        self.zoom_range = float(zoom_range)
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.rng = np.random.default_rng(seed)

    def random_matrix(self, shape: tuple[int, int]) -> np.ndarray:
        """Draw one transform: a 3x3 map from output to input pixel coordinates (row, col)."""
        angle = np.deg2rad(self.rng.uniform(-self.rotation_range, self.rotation_range))
        zoom = self.rng.uniform(1 - self.zoom_range, 1 + self.zoom_range)
        shift = self.rng.uniform(-self.shift_range, self.shift_range, size=2) * np.array(shape)
        flips = np.array(
            [
                -1.0 if self.vertical_flip and self.rng.random() < 0.5 else 1.0,
                -1.0 if self.horizontal_flip and self.rng.random() < 0.5 else 1.0,
            ]
        )
        cos, sin = np.cos(angle), np.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag(flips) / zoom
        centre = (np.array(shape, dtype="float64") - 1) / 2
        matrix = np.eye(3)
        matrix[:2, :2] = linear
        matrix[:2, 2] = centre - linear @ centre - shift
        return matrix

    def __call__(self, image: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(image, mask)`` moved by one random transform, shapes unchanged.

        Raises:
            ValueError: when the image and mask differ in height and width.
        """
        image, mask = np.asarray(image), np.asarray(mask)
        if image.shape[:2] != mask.shape[:2] or image.ndim not in (2, 3) or mask.ndim not in (2, 3):
            raise ValueError(
                "PairedAugmenter needs a (H, W) or (H, W, C) image and a mask of the same "
                f"height and width. Received: image {image.shape} and mask {mask.shape}"
            )
        shape = image.shape[:2]
        matrix = self.random_matrix(shape)
        warped_image = _warp(image, matrix, 1, shape).astype(image.dtype, copy=False)
        return warped_image, _warp(mask, matrix, 0, shape)


def resize_pair(
    image: np.ndarray, mask: np.ndarray | None, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize a 2-D image (linear) and its mask (nearest) to ``shape`` ``(height, width)``."""
    factors = np.array(shape, dtype="float64") / np.array(image.shape[:2])
    matrix = np.eye(3)
    matrix[:2, :2] = np.diag(1.0 / factors)
    # align pixel centres: input = (output + 0.5) / factor - 0.5
    matrix[:2, 2] = 0.5 / factors - 0.5
    resized = _warp(np.asarray(image, dtype="float32"), matrix, 1, tuple(shape))
    return resized, None if mask is None else _warp(np.asarray(mask), matrix, 0, tuple(shape))
