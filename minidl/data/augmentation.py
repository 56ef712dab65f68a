"""Seeded random augmentation of single images (flips, shifts, zoom, rotation) and rescaling.

>>> import numpy as np
>>> image = np.arange(2 * 3 * 1, dtype="float32").reshape(2, 3, 1)
>>> flipper = ImageDataGenerator(horizontal_flip=True, rescale=0.5)
>>> [flipper.standardize(flipper.random_transform(image, seed=s))[0, :, 0].tolist() for s in (0, 2)]
[[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from minidl.data.image import DirectoryIterator

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def _check_range(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative number. Received: {name}={value!r}")
    return float(value)


class ImageDataGenerator:
    """Random augmentation and rescaling applied to each image as it is loaded.

    Args:
        rescale: factor multiplied into every pixel after augmentation (e.g. ``1 / 255``).
        horizontal_flip: flip left-right with probability 0.5.
        vertical_flip: flip top-bottom with probability 0.5.
        width_shift_range: shift left/right by up to this fraction of the width (a value
            ``>= 1`` counts pixels).
        height_shift_range: the same for up/down.
        zoom_range: a float ``z`` draws each axis' zoom from ``[1 - z, 1 + z]``; a pair gives
            the interval. Zoom ``> 1`` shows more of the image (zooms out), as in Keras.
        rotation_range: rotate by up to this many degrees either way.
        fill_mode: how pixels from outside the image are filled: ``"nearest"``,
            ``"constant"`` (with ``cval``), ``"reflect"`` or ``"wrap"``.
        cval: fill value for ``fill_mode="constant"``.
        preprocessing_function: applied to each augmented image (float array) before
            ``rescale``, e.g. ``minidl.applications.preprocess_input``.
        dtype: dtype of the batches.

    Randomness comes from the ``seed`` given to ``flow_from_directory`` (or to
    ``random_transform``), so augmented batches are reproducible.
    """

    def __init__(
        self,
        rescale: float | None = None,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        width_shift_range: float = 0.0,
        height_shift_range: float = 0.0,
        zoom_range: float | tuple[float, float] = 0.0,
        rotation_range: float = 0.0,
        fill_mode: str = "nearest",
        cval: float = 0.0,
        preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
        dtype: str = "float32",
    ) -> None:
        if fill_mode not in FILL_MODES:
            raise ValueError(f"`fill_mode` must be one of {FILL_MODES}. Received: {fill_mode!r}")
        if isinstance(zoom_range, int | float) and not isinstance(zoom_range, bool):
            zoom = _check_range("zoom_range", zoom_range)
            zoom_interval = (1.0 - zoom, 1.0 + zoom)
        elif isinstance(zoom_range, Sequence) and len(zoom_range) == 2:
            zoom_interval = (float(zoom_range[0]), float(zoom_range[1]))
        else:
            raise ValueError(
                f"`zoom_range` must be a float or a pair of floats. Received: {zoom_range!r}"
            )
        if zoom_interval[0] <= 0 or zoom_interval[0] > zoom_interval[1]:
            raise ValueError(
                f"`zoom_range` must give an interval of positive zooms (low <= high). "
                f"Received: zoom_range={zoom_range!r}"
            )
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError(
                f"`preprocessing_function` must be callable. Received: {preprocessing_function!r}"
            )
        self.rescale = rescale
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.width_shift_range = _check_range("width_shift_range", width_shift_range)
        self.height_shift_range = _check_range("height_shift_range", height_shift_range)
        self.zoom_range = zoom_interval
        self.rotation_range = _check_range("rotation_range", rotation_range)
        self.fill_mode = fill_mode
        self.cval = float(cval)
        self.preprocessing_function = preprocessing_function
        self.dtype = dtype

    @property
    def has_geometry(self) -> bool:
        """Whether any shift, zoom or rotation is configured."""
        return bool(
            self.width_shift_range
            or self.height_shift_range
            or self.rotation_range
            or self.zoom_range != (1.0, 1.0)
        )

    def random_transform(
        self, x: np.ndarray, seed: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """Return a randomly flipped / shifted / zoomed / rotated copy of one HWC image."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 3:
            raise ValueError(
                f"Expected one image of shape (height, width, channels). Received: {x.shape}"
            )
        if self.has_geometry:
            x = self._affine(x, rng)
        if self.horizontal_flip and rng.random() < 0.5:
            x = x[:, ::-1]
        if self.vertical_flip and rng.random() < 0.5:
            x = x[::-1]
        return np.ascontiguousarray(x)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Apply ``preprocessing_function`` and then ``rescale`` to one image."""
        if self.preprocessing_function is not None:
            x = np.asarray(self.preprocessing_function(x), dtype=self.dtype)
        if self.rescale:
            x = x * np.asarray(self.rescale, dtype=self.dtype)
        return x

    def _affine(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Resample ``x`` bilinearly through a random inverse map (output -> input pixel)."""
        height, width = x.shape[:2]
        shift_rows = rng.uniform(-self.height_shift_range, self.height_shift_range)
        shift_cols = rng.uniform(-self.width_shift_range, self.width_shift_range)
        if self.height_shift_range < 1:
            shift_rows *= height
        if self.width_shift_range < 1:
            shift_cols *= width
        zoom_rows, zoom_cols = rng.uniform(*self.zoom_range, size=2)
        theta = np.deg2rad(rng.uniform(-self.rotation_range, self.rotation_range))
        cos, sin = np.cos(theta), np.sin(theta)
        center_r, center_c = (height - 1) / 2, (width - 1) / 2
        rows, cols = np.meshgrid(
            np.arange(height) - center_r, np.arange(width) - center_c, indexing="ij"
        )
        src_r = zoom_rows * (cos * rows - sin * cols) + center_r + shift_rows
        src_c = zoom_cols * (sin * rows + cos * cols) + center_c + shift_cols
        return self._sample_bilinear(x, src_r, src_c)

    def _sample_bilinear(self, x: np.ndarray, src_r: np.ndarray, src_c: np.ndarray) -> np.ndarray:
        height, width = x.shape[:2]
        r0, c0 = np.floor(src_r).astype(np.int64), np.floor(src_c).astype(np.int64)
        wr, wc = (src_r - r0)[..., None], (src_c - c0)[..., None]
        out = np.zeros(src_r.shape + x.shape[2:], dtype=np.float64)
        for dr, weight_r in ((0, 1 - wr), (1, wr)):
            rr, valid_r = self._fill_index(r0 + dr, height)
            for dc, weight_c in ((0, 1 - wc), (1, wc)):
                cc, valid_c = self._fill_index(c0 + dc, width)
                values = x[rr, cc]
                if self.fill_mode == "constant":
                    values = np.where((valid_r & valid_c)[..., None], values, self.cval)
                out += weight_r * weight_c * values
        return out.astype(self.dtype)

    def _fill_index(self, index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Map possibly out-of-range indices into ``[0, size)`` per ``fill_mode``."""
        valid = (index >= 0) & (index < size)
        if self.fill_mode == "wrap":
            return np.mod(index, size), valid
        if self.fill_mode == "reflect":
            period = np.mod(index, 2 * size)
            return np.where(period < size, period, 2 * size - 1 - period), valid
        return np.clip(index, 0, size - 1), valid

    def flow_from_directory(self, directory: str | os.PathLike, **kwargs: Any) -> DirectoryIterator:
        """A ``DirectoryIterator`` over ``directory`` that augments with this generator."""
        from minidl.data.image import DirectoryIterator

        return DirectoryIterator(directory, image_data_generator=self, **kwargs)
