"""Keras 2's ``ImageDataGenerator``: seeded random augmentation and normalisation of images.

Every argument of Keras 2.2.4's generator is supported. Random parameters are drawn from a
generator keyed by a seed, always the same number of draws in the same order, so two
generators with the same geometric settings and seed (an image and its mask) get the same
rotation, shift, shear, zoom and flips even when only one of them changes colours.
``interpolation_order=0`` reads the nearest pixel, keeping mask labels exact.

>>> import numpy as np
>>> image = np.arange(2 * 3 * 1, dtype="float32").reshape(2, 3, 1)
>>> flipper = ImageDataGenerator(horizontal_flip=True, rescale=0.5)
>>> [flipper.standardize(flipper.random_transform(image, seed=s))[0, :, 0].tolist() for s in (0, 2)]
[[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]]
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from minidl.data.affine import FILL_MODES, affine_transform

if TYPE_CHECKING:
    from minidl.data.array_iterator import NumpyArrayIterator
    from minidl.data.image import DirectoryIterator

logger = logging.getLogger("minidl")

NUM_DRAWS = 12  # random numbers drawn per image, whatever the settings


def _check_range(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative number. Received: {name}={value!r}")
    return float(value)


def _shift_choices(name: str, value: Any) -> float | np.ndarray:
    """Keras 2's shift ranges: a float range, an int ``n`` (whole pixels ``-(n-1)..n-1``)
    or a list of allowed values (each used with a random sign)."""
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number or a list. Received: {name}={value!r}")
    if isinstance(value, int | np.integer) and value >= 1:
        return np.arange(-int(value) + 1, int(value), dtype=float)
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        choices = np.asarray(value, dtype=float)
        if choices.ndim != 1 or choices.size == 0:
            raise ValueError(f"`{name}` must be a 1-D list of values. Received: {name}={value!r}")
        return choices
    return _check_range(name, value)


def _pair(name: str, value: Any) -> tuple[float, float]:
    if not (isinstance(value, Sequence | np.ndarray) and len(value) == 2):
        raise ValueError(f"`{name}` must be a pair (low, high). Received: {name}={value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise ValueError(f"`{name}` must have low <= high. Received: {name}={value!r}")
    return low, high


class ImageDataGenerator:
    """Random augmentation, rescaling and normalisation applied to each image (Keras 2).

    Args:
        featurewise_center: subtract the per-channel mean of the data given to ``fit``.
        samplewise_center: subtract each image's own mean.
        featurewise_std_normalization: divide by the per-channel std of ``fit``'s data.
        samplewise_std_normalization: divide each image by its own std.
        zca_whitening: apply ZCA whitening learned by ``fit``; ``zca_epsilon`` regularises it.
        rotation_range: rotate by up to this many degrees either way.
        width_shift_range, height_shift_range: a float below 1 is a fraction of the size, a
            float of at least 1 a number of pixels, an int ``n`` picks whole pixels from
            ``-(n-1)`` to ``n-1``, and a list picks one of its values (with a random sign).
        brightness_range: a pair; pixels are multiplied by a factor drawn from it and clipped
            to [0, 255] (Keras 2 does the same through an 8-bit Pillow image).
        shear_range: shear angle in degrees, drawn from ``[-shear_range, shear_range]``.
        zoom_range: a float ``z`` draws each axis' zoom from ``[1 - z, 1 + z]``; a pair gives
            the interval. Zoom ``> 1`` shows more of the image (zooms out), as in Keras.
        channel_shift_range: add one offset from ``[-range, range]`` to every channel,
            clipped to the image's own min and max.
        fill_mode: how pixels from outside the image are filled: ``"nearest"``,
            ``"constant"`` (with ``cval``), ``"reflect"`` or ``"wrap"``.
        horizontal_flip, vertical_flip: flip with probability 0.5.
        rescale: factor multiplied into every pixel (e.g. ``1 / 255``), after
            ``preprocessing_function``.
        preprocessing_function: applied to each augmented image before ``rescale``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        validation_split: fraction of the data that ``flow(..., subset="validation")`` uses.
        interpolation_order: 1 (bilinear, Keras' default) or 0 (nearest: masks stay
            binary).
        dtype: dtype of the batches.

    Randomness comes from the ``seed`` given to ``flow`` / ``flow_from_directory`` (or to
    ``random_transform``), so augmented batches are reproducible.
    """

    def __init__(
        self,
        featurewise_center: bool = False,
        samplewise_center: bool = False,
        featurewise_std_normalization: bool = False,
        samplewise_std_normalization: bool = False,
        zca_whitening: bool = False,
        zca_epsilon: float = 1e-6,
        rotation_range: float = 0.0,
        width_shift_range: float | int | Sequence[float] = 0.0,
        height_shift_range: float | int | Sequence[float] = 0.0,
        brightness_range: tuple[float, float] | None = None,
        shear_range: float = 0.0,
        zoom_range: float | tuple[float, float] = 0.0,
        channel_shift_range: float = 0.0,
        fill_mode: str = "nearest",
        cval: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        rescale: float | None = None,
        preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
        data_format: str | None = None,
        validation_split: float = 0.0,
        interpolation_order: int = 1,
        dtype: str | None = None,
    ) -> None:
        if fill_mode not in FILL_MODES:
            raise ValueError(f"`fill_mode` must be one of {FILL_MODES}. Received: {fill_mode!r}")
        if isinstance(zoom_range, int | float) and not isinstance(zoom_range, bool):
            zoom = _check_range("zoom_range", zoom_range)
            zoom_interval = (1.0 - zoom, 1.0 + zoom)
        elif isinstance(zoom_range, Sequence | np.ndarray) and len(zoom_range) == 2:
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
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be 'channels_last' or 'channels_first'. "
                f"Received: data_format={data_format!r}"
            )
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(
                "`validation_split` must be in [0, 1). "
                f"Received: validation_split={validation_split}"
            )
        if interpolation_order not in (0, 1):
            raise ValueError(
                "`interpolation_order` must be 0 (nearest) or 1 (bilinear). "
                f"Received: interpolation_order={interpolation_order!r}"
            )
        self.featurewise_center = bool(featurewise_center)
        self.samplewise_center = bool(samplewise_center)
        self.featurewise_std_normalization = bool(featurewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.zca_whitening = bool(zca_whitening)
        self.zca_epsilon = _check_range("zca_epsilon", zca_epsilon)
        self.rotation_range = _check_range("rotation_range", rotation_range)
        self.width_shift_range = _shift_choices("width_shift_range", width_shift_range)
        self.height_shift_range = _shift_choices("height_shift_range", height_shift_range)
        self.brightness_range = (
            None if brightness_range is None else _pair("brightness_range", brightness_range)
        )
        self.shear_range = _check_range("shear_range", shear_range)
        self.zoom_range = zoom_interval
        self.channel_shift_range = _check_range("channel_shift_range", channel_shift_range)
        self.fill_mode = fill_mode
        self.cval = float(cval)
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = data_format or "channels_last"
        self.validation_split = float(validation_split)
        self.interpolation_order = int(interpolation_order)
        self.dtype = dtype or "float32"
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.principal_components: np.ndarray | None = None
        if self.zca_whitening and self.featurewise_std_normalization:
            warnings.warn(
                "ImageDataGenerator: zca_whitening overrides featurewise_std_normalization "
                "(as in Keras 2); setting featurewise_std_normalization=False.",
                stacklevel=2,
            )
            self.featurewise_std_normalization = False
        if self.zca_whitening and not self.featurewise_center:
            warnings.warn(
                "ImageDataGenerator: zca_whitening needs featurewise_center (as in Keras 2); "
                "setting featurewise_center=True.",
                stacklevel=2,
            )
            self.featurewise_center = True

    # ------------------------------------------------------------------ layout
    def _to_last(self, x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, -3, -1) if self.data_format == "channels_first" else x

    def _from_last(self, x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, -1, -3) if self.data_format == "channels_first" else x

    @property
    def has_geometry(self) -> bool:
        """Whether any rotation, shift, shear or zoom is configured."""
        return bool(
            np.any(self.width_shift_range)
            or np.any(self.height_shift_range)
            or self.rotation_range
            or self.shear_range
            or self.zoom_range != (1.0, 1.0)
        )

    # ------------------------------------------------------------------ random transforms
    def _shift(self, spec: float | np.ndarray, u: float, sign: float, size: int) -> float:
        if isinstance(spec, np.ndarray):
            shift = spec[min(int(u * spec.size), spec.size - 1)] * (1 if sign < 0.5 else -1)
            return float(shift * size) if np.max(np.abs(spec)) < 1 else float(shift)
        shift = spec * (2 * u - 1)
        return shift * size if spec < 1 else shift

    def get_random_transform(
        self, img_shape: Sequence[int], seed: int | np.random.Generator | None = None
    ) -> dict[str, Any]:
        """Random parameters for one image of ``img_shape`` (Keras 2's dictionary keys)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        u = rng.random(NUM_DRAWS)
        shape = tuple(img_shape)
        height, width = (shape[1], shape[2]) if self.data_format == "channels_first" else shape[:2]
        low, high = self.zoom_range
        params: dict[str, Any] = {
            "theta": self.rotation_range * (2 * u[0] - 1),
            "tx": self._shift(self.height_shift_range, u[1], u[10], height),
            "ty": self._shift(self.width_shift_range, u[2], u[11], width),
            "shear": self.shear_range * (2 * u[3] - 1),
            "zx": low + (high - low) * u[4],
            "zy": low + (high - low) * u[5],
            "flip_horizontal": self.horizontal_flip and u[6] < 0.5,
            "flip_vertical": self.vertical_flip and u[7] < 0.5,
            "channel_shift_intensity": (
                self.channel_shift_range * (2 * u[8] - 1) if self.channel_shift_range else None
            ),
            "brightness": None,
        }
        if self.brightness_range is not None:
            b_low, b_high = self.brightness_range
            params["brightness"] = b_low + (b_high - b_low) * u[9]
        return params

    def apply_transform(self, x: np.ndarray, transform_parameters: dict[str, Any]) -> np.ndarray:
        """Apply parameters from ``get_random_transform`` to one image."""
        params = transform_parameters
        x = self._to_last(np.asarray(x, dtype=self.dtype))
        if x.ndim != 3:
            raise ValueError(
                "Expected one image of rank 3, e.g. (height, width, channels). "
                f"Received: an array of shape {x.shape}"
            )
        x = affine_transform(
            x,
            theta=params.get("theta", 0.0),
            tx=params.get("tx", 0.0),
            ty=params.get("ty", 0.0),
            shear=params.get("shear", 0.0),
            zx=params.get("zx", 1.0),
            zy=params.get("zy", 1.0),
            fill_mode=self.fill_mode,
            cval=self.cval,
            order=self.interpolation_order,
        )
        intensity = params.get("channel_shift_intensity")
        if intensity is not None:
            x = np.clip(x + intensity, x.min(), x.max()).astype(x.dtype)
        if params.get("flip_horizontal"):
            x = x[:, ::-1]
        if params.get("flip_vertical"):
            x = x[::-1]
        if params.get("brightness") is not None:
            x = np.clip(x * params["brightness"], 0, 255).astype(x.dtype)
        return np.ascontiguousarray(self._from_last(x))

    def random_transform(
        self, x: np.ndarray, seed: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """Return a randomly transformed copy of one image (the layout of ``data_format``)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 3:
            raise ValueError(
                "Expected one image of rank 3, e.g. (height, width, channels). "
                f"Received: an array of shape {x.shape}"
            )
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    # ------------------------------------------------------------------ normalisation
    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Apply ``preprocessing_function``, ``rescale`` and the normalisations to one image
        (or a batch), in Keras 2's order."""
        x = np.asarray(x, dtype=self.dtype)
        if self.preprocessing_function is not None:
            x = np.asarray(self.preprocessing_function(x), dtype=self.dtype)
        if self.rescale:
            x = x * np.asarray(self.rescale, dtype=self.dtype)
        x = self._to_last(x)
        if self.samplewise_center:
            x = x - np.mean(x, axis=(-3, -2, -1), keepdims=True)
        if self.samplewise_std_normalization:
            x = x / (np.std(x, axis=(-3, -2, -1), keepdims=True) + 1e-6)
        if self.featurewise_center:
            if self.mean is None:
                self._warn_unfitted("featurewise_center")
            else:
                x = x - self.mean
        if self.featurewise_std_normalization:
            if self.std is None:
                self._warn_unfitted("featurewise_std_normalization")
            else:
                x = x / (self.std + 1e-6)
        if self.zca_whitening:
            if self.principal_components is None:
                self._warn_unfitted("zca_whitening")
            else:
                flat = x.reshape(-1, int(np.prod(x.shape[-3:])))
                x = (flat @ self.principal_components).reshape(x.shape)
        return self._from_last(x).astype(self.dtype, copy=False)

    def _warn_unfitted(self, option: str) -> None:
        if not getattr(self, f"_warned_{option}", False):
            setattr(self, f"_warned_{option}", True)
            warnings.warn(
                f"ImageDataGenerator specifies `{option}`, but it has not been fit on any "
                "training data; that step is skipped. Call `.fit(x)` first.",
                stacklevel=3,
            )

    def fit(self, x: Any, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Learn the feature-wise mean, std and ZCA matrix from images ``x`` (rank 4).

        With ``augment=True`` the statistics come from ``rounds`` randomly augmented copies.
        """
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(
                "`fit` expects a batch of images of rank 4, e.g. (samples, height, width, "
                f"channels). Received: an array of shape {x.shape}"
            )
        if augment:
            rng = np.random.default_rng(seed)
            x = np.stack([self.random_transform(image, rng) for _ in range(rounds) for image in x])
        x = self._to_last(x).astype("float64")
        if self.featurewise_center:
            self.mean = np.mean(x, axis=(0, 1, 2)).reshape(1, 1, -1).astype(self.dtype)
            x = x - self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=(0, 1, 2)).reshape(1, 1, -1).astype(self.dtype)
            x = x / (self.std + 1e-6)
        if self.zca_whitening:
            flat = x.reshape(x.shape[0], -1)
            sigma = flat.T @ flat / flat.shape[0]
            u, s, _ = np.linalg.svd(sigma)
            inverse_root = 1.0 / np.sqrt(s[np.newaxis] + self.zca_epsilon)
            self.principal_components = ((u * inverse_root) @ u.T).astype(self.dtype)

    # ------------------------------------------------------------------ iterators
    def flow(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        sample_weight: Any = None,
        seed: int | None = None,
        save_to_dir: str | os.PathLike | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: str | None = None,
    ) -> NumpyArrayIterator:
        """Batches ``(x, y)`` (or ``x``) of augmented, standardized images from arrays."""
        from minidl.data.array_iterator import NumpyArrayIterator

        return NumpyArrayIterator(
            x,
            y,
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            sample_weight=sample_weight,
            seed=seed,
            save_to_dir=save_to_dir,
            save_prefix=save_prefix,
            save_format=save_format,
            subset=subset,
        )

    def flow_from_directory(self, directory: str | os.PathLike, **kwargs: Any) -> DirectoryIterator:
        """A ``DirectoryIterator`` over ``directory`` that augments with this generator.

        ``subset="validation"`` keeps the first ``validation_split`` of each class's files
        (in listing order) and ``"training"`` the rest, as Keras 2 splits them.
        """
        from minidl.data.image import DirectoryIterator

        subset = kwargs.pop("subset", None)
        if subset not in (None, "training", "validation"):
            raise ValueError(
                f"`subset` must be 'training', 'validation' or None. Received: {subset!r}"
            )
        if subset is not None and not self.validation_split:
            raise ValueError(
                "`subset` needs an ImageDataGenerator created with validation_split > 0. "
                f"Received: validation_split={self.validation_split}"
            )
        if self.data_format == "channels_first":
            raise ValueError(
                "flow_from_directory yields channels-last batches; create the generator with "
                "data_format='channels_last'. Received: data_format='channels_first'"
            )
        iterator = DirectoryIterator(directory, image_data_generator=self, **kwargs)
        if subset is not None:
            _keep_subset(iterator, subset, self.validation_split)
        return iterator


def _keep_subset(iterator: DirectoryIterator, subset: str, validation_split: float) -> None:
    """Restrict a fresh iterator to one side of a per-class validation split."""
    keep = []
    for label in range(iterator.num_classes):
        members = np.flatnonzero(iterator.classes == label)
        split = int(validation_split * len(members))
        keep.extend(members[:split] if subset == "validation" else members[split:])
    keep_index = np.asarray(sorted(keep), dtype=np.int64)
    iterator.filenames = [iterator.filenames[i] for i in keep_index]
    iterator.classes = iterator.classes[keep_index]
    iterator.samples = len(keep_index)
    iterator.reset()
    iterator.index_array = iterator._epoch_order()
