"""Image folders as training batches: loading with Pillow, seeded augmentation, prefetching.

A folder with one sub-folder per class (``train/cats/*.jpg``, ``train/dogs/*.jpg``) becomes a
``DirectoryIterator``: a Keras-``Sequence``-like object whose ``iterator[i]`` is batch ``i`` as
``(x, y)`` with ``x`` float32 of shape ``(batch, height, width, channels)``. ``Model.fit``,
``evaluate`` and ``predict`` take it directly. Batch ``i`` of an epoch depends only on the
seed, the epoch number and ``i`` (shuffling and augmentation draw from generators keyed by
those), so a background thread can load the next batch while the model trains on this one
without changing any result.

>>> import tempfile, numpy as np
>>> from PIL import Image
>>> root = tempfile.mkdtemp()
>>> for label in ("cats", "dogs"):
...     os.makedirs(os.path.join(root, label))
...     for k in range(3):
...         Image.new("RGB", (8, 6), (40 * k, 0, 0)).save(os.path.join(root, label, f"{k}.png"))
>>> batches = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
...     root, target_size=(4, 4), batch_size=4, shuffle=False)
>>> batches.class_indices, batches.samples, len(batches)
({'cats': 0, 'dogs': 1}, 6, 2)
>>> x, y = batches[0]
>>> x.shape, x.dtype, y.tolist()[:2]
((4, 4, 4, 3), dtype('float32'), [[1.0, 0.0], [1.0, 0.0]])
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from minidl.data.augmentation import ImageDataGenerator
from minidl.data.batch_order import BatchIterator, batch_index

logger = logging.getLogger("minidl")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".gif", ".webp")
COLOR_MODES = {"rgb": ("RGB", 3), "rgba": ("RGBA", 4), "grayscale": ("L", 1)}
HIGH_DEPTH_GRAY = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # Pillow's integer gray modes
CLASS_MODES = ("categorical", "binary", "sparse", "input", None)
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
_READ_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
)


def load_img(
    path: str | os.PathLike,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
) -> Image.Image:
    """Open an image file with Pillow, convert it to ``color_mode`` and resize to ``(h, w)``.

    In ``"grayscale"`` mode 16-bit and 32-bit integer images keep their values (0..65535 for
    16 bits; Keras' rule), so ``img_to_array`` gives them unscaled: divide by 65535 (or pass
    ``rescale=1 / 65535``) to bring them to [0, 1]. Converting such an image to ``"rgb"`` or
    ``"rgba"`` goes through Pillow, which clips values above 255.
    """
    if color_mode not in COLOR_MODES:
        raise ValueError(
            f"`color_mode` must be one of {sorted(COLOR_MODES)}. Received: {color_mode!r}"
        )
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {sorted(INTERPOLATIONS)}. "
            f"Received: interpolation={interpolation!r}"
        )
    with Image.open(path) as opened:
        if color_mode == "grayscale" and opened.mode in HIGH_DEPTH_GRAY:
            img = opened.convert("I")  # Keras' rule: 16- and 32-bit grayscale keep their values
        else:
            img = opened.convert(COLOR_MODES[color_mode][0])
    if target_size is not None:
        height, width = (int(d) for d in target_size)
        if img.size != (width, height):
            img = img.resize((width, height), INTERPOLATIONS[interpolation])
    return img


def img_to_array(img: Image.Image, dtype: str = "float32") -> np.ndarray:
    """A Pillow image as an ``(height, width, channels)`` array (grayscale keeps one channel)."""
    array = np.asarray(img, dtype=dtype)
    return array[:, :, None] if array.ndim == 2 else array


def flow_from_directory(directory: str | os.PathLike, **kwargs: Any) -> DirectoryIterator:
    """A ``DirectoryIterator`` over ``directory`` without augmentation (see its arguments)."""
    return DirectoryIterator(directory, **kwargs)


def _list_class_files(class_dir: str, follow_links: bool) -> list[str]:
    """Image files under ``class_dir`` (recursively), as sorted paths relative to it.

    The order is ``os.walk``'s (top-down, sorted). With ``follow_links`` linked folders are
    entered, but each real folder (device and inode) only once: a link loop ends, and two
    links to one folder do not list its files twice.
    """
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    pending = [class_dir]
    while pending:
        folder = pending.pop()
        try:
            info = os.stat(folder)
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as err:
            logger.warning("Skipping unreadable folder %r (%s).", folder, err)
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=follow_links):
                subfolders.append(entry.path)
            elif not entry.is_dir() and entry.name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.relpath(entry.path, class_dir))
        pending.extend(reversed(subfolders))
    return found


def _header_problem(path: str) -> str | None:
    """Why Pillow cannot identify ``path`` as an image (reads only its header), or None."""
    try:
        with Image.open(path) as img:
            img.size  # noqa: B018 - parsing the header is the check
    except _READ_ERRORS as err:
        return f"{type(err).__name__}: {err}"
    return None


class DirectoryIterator(BatchIterator):
    """Batches of images read from a folder with one sub-folder per class.

    Args:
        directory: the folder; each sub-folder is a class (files in it, recursively, are its
            images). With ``class_mode=None`` put unlabelled images in one sub-folder, e.g.
            ``test/unknown/``.
        image_data_generator: an ``ImageDataGenerator`` for augmentation / rescaling, or None.
        target_size: ``(height, width)`` every image is resized to.
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"``.
        classes: sub-folder names to use, in label order; default all, sorted.
        class_mode: labels as ``"categorical"`` (one-hot), ``"binary"`` (0/1 floats, two
            classes), ``"sparse"`` (integer labels), ``"input"`` (the images themselves) or
            None (batches are only ``x``, for ``predict``).
        batch_size: images per batch (the last batch may be smaller).
        shuffle: reorder the images at each epoch.
        seed: seeds shuffling and augmentation; None draws one from ``np.random``.
        interpolation: Pillow resampling filter for resizing (Keras' default ``"nearest"``).
        on_error: for unreadable files, ``"warn"`` (log a warning naming the file and skip
            it) or ``"raise"`` (``ValueError`` naming the file). Files whose header Pillow
            cannot parse are found when the iterator is built and left out of ``filenames``.
            Files that fail later (e.g. truncated data) are found when first loaded: with
            ``shuffle=True`` and labels (training) they are left out of their batch (``x``
            and ``y`` stay aligned); read in order (``shuffle=False`` or ``class_mode=None``,
            as for ``predict``) they always raise a ``ValueError`` naming the file, because
            leaving one out would shift every later row against ``filenames``.
        prefetch: while batches are read in order, load the next one on a background thread
            (pass ``shuffle=False`` to ``fit``: this iterator shuffles the images itself).
        follow_links: follow symbolic links when listing the sub-folders.
        dtype: dtype of ``x`` (and of one-hot / binary labels).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        image_data_generator: ImageDataGenerator | None = None,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: Sequence[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        interpolation: str = "nearest",
        on_error: str = "warn",
        prefetch: bool = True,
        follow_links: bool = False,
        dtype: str = "float32",
    ) -> None:
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise ValueError(f"`directory` must be an existing folder. Received: {directory!r}")
        if color_mode not in COLOR_MODES:
            raise ValueError(
                f"`color_mode` must be one of {sorted(COLOR_MODES)}. Received: {color_mode!r}"
            )
        if class_mode not in CLASS_MODES:
            raise ValueError(f"`class_mode` must be one of {CLASS_MODES}. Received: {class_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {sorted(INTERPOLATIONS)}. "
                f"Received: {interpolation!r}"
            )
        if on_error not in ("warn", "raise"):
            raise ValueError(f"`on_error` must be 'warn' or 'raise'. Received: {on_error!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
        if len(target_size) != 2 or any(int(d) < 1 for d in target_size):
            raise ValueError(
                f"`target_size` must be (height, width), both positive. Received: {target_size!r}"
            )
        self.directory = directory
        self.image_data_generator = image_data_generator
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.color_mode = color_mode
        self.image_shape = (*self.target_size, COLOR_MODES[color_mode][1])
        self.class_mode = class_mode
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.randint(2**31 - 1)) if seed is None else int(seed)
        self.interpolation = interpolation
        self.on_error = on_error
        self.prefetch = bool(prefetch)
        self.dtype = dtype
        self._find_files(classes, follow_links)
        self._start_epochs()
        self._skipped: set[str] = set()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[tuple[int, int], Future] | None = None
        self._last_index = -1

    # ------------------------------------------------------------------ file listing
    def _find_files(self, classes: Sequence[str] | None, follow_links: bool) -> None:
        if classes is None:
            classes = sorted(
                name
                for name in os.listdir(self.directory)
                if os.path.isdir(os.path.join(self.directory, name))
            )
        classes = list(classes)
        missing = [c for c in classes if not os.path.isdir(os.path.join(self.directory, c))]
        if missing:
            raise ValueError(
                f"Every class must be a sub-folder of {self.directory!r}. Received: classes "
                f"{missing} that are not."
            )
        if self.class_mode == "binary" and len(classes) != 2:
            raise ValueError(
                f"class_mode='binary' needs exactly 2 classes. Received: {len(classes)} classes "
                f"{classes} in {self.directory!r}"
            )
        self.class_indices = {name: index for index, name in enumerate(classes)}
        self.num_classes = len(classes)
        filenames: list[str] = []
        labels: list[int] = []
        self.invalid_filenames: list[str] = []
        for name in classes:
            for relative in _list_class_files(os.path.join(self.directory, name), follow_links):
                filename = os.path.join(name, relative)
                problem = _header_problem(os.path.join(self.directory, filename))
                if problem is not None:
                    self._report_bad_file(filename, problem)
                    self.invalid_filenames.append(filename)
                    continue
                filenames.append(filename)
                labels.append(self.class_indices[name])
        self.filenames = filenames
        self.classes = np.asarray(labels, dtype="int32")
        self.samples = len(filenames)
        logger.info(
            "Found %d images belonging to %d classes in %s.",
            self.samples,
            self.num_classes,
            self.directory,
        )

    def _report_bad_file(self, filename: str, problem: str) -> None:
        path = os.path.join(self.directory, filename)
        if self.on_error == "raise":
            raise ValueError(f"Could not read the image file {path!r}. Received: {problem}")
        logger.warning("Skipping unreadable image file %r (%s).", path, problem)

    @property
    def filepaths(self) -> list[str]:
        """Full paths of the images, in ``filenames`` order."""
        return [os.path.join(self.directory, f) for f in self.filenames]

    @property
    def labels(self) -> np.ndarray:
        """Alias of ``classes``: the label index of every image."""
        return self.classes

    # ------------------------------------------------------------------ ordering
    @property
    def n(self) -> int:
        """Number of images (Keras 2's name for ``samples``)."""
        return self.samples

    def on_epoch_end(self) -> None:
        """Start the next epoch: reshuffle (reproducibly from ``seed`` and the epoch number)."""
        super().on_epoch_end()
        self._drop_pending()

    def _no_batch_message(self) -> str:
        return f"No images were found in {self.directory!r}; there is no batch."

    # ------------------------------------------------------------------ batches
    def __getitem__(self, index: int) -> Any:
        """Batch ``index`` of this epoch: ``(x, y)``, or ``x`` when ``class_mode`` is None."""
        count = len(self)
        index = batch_index(index, count)
        future = None
        if self._pending is not None and self._pending[0] == (self.epoch, index):
            future = self._pending[1]
            self._pending = None
        else:
            self._drop_pending()
        batch = future.result() if future is not None else self._load_batch(*self._batch_job(index))
        # Prefetch only while batches are read in order (fit(..., shuffle=False), evaluate,
        # predict, next()): a caller that permutes batch indices would waste the work.
        in_order = index == 0 or index == self._last_index + 1
        self._last_index = index
        if self.prefetch and in_order and index + 1 < count:
            self._schedule(index + 1)
        return batch

    def _batch_job(self, index: int) -> tuple[np.ndarray, int, int]:
        start = index * self.batch_size
        return self.index_array[start : start + self.batch_size].copy(), self.epoch, index

    def _schedule(self, index: int) -> None:
        self._drop_pending()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="minidl-prefetch")
            weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        job = self._batch_job(index)
        self._pending = ((self.epoch, index), self._executor.submit(self._load_batch, *job))

    def _drop_pending(self) -> None:
        if self._pending is not None:
            self._pending[1].cancel()
            self._pending = None

    def close(self) -> None:
        """Stop the prefetch thread (it is also stopped when the iterator is garbage-collected)."""
        self._drop_pending()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> DirectoryIterator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _load_batch(self, sample_ids: np.ndarray, epoch: int, index: int) -> Any:
        """Load, augment and label the images ``sample_ids`` (pure in its arguments)."""
        rng = np.random.default_rng([self.seed, epoch, index, 1])
        generator = self.image_data_generator
        images, kept = [], []
        for sample in sample_ids:
            image = self._read(self.filenames[sample])
            if image is None:
                continue
            if generator is not None:
                image = generator.standardize(generator.random_transform(image, rng))
            images.append(image)
            kept.append(sample)
        if not images:
            paths = [self.filepaths[s] for s in sample_ids]
            raise ValueError(f"Every image of batch {index} is unreadable. Received files: {paths}")
        x = np.stack(images).astype(self.dtype, copy=False)
        labels = self.classes[np.asarray(kept, dtype=np.int64)]
        if self.class_mode is None:
            return x
        if self.class_mode == "input":
            return x, x.copy()
        if self.class_mode == "sparse":
            return x, labels.copy()
        if self.class_mode == "binary":
            return x, labels.astype(self.dtype)
        one_hot = np.zeros((len(kept), self.num_classes), dtype=self.dtype)
        one_hot[np.arange(len(kept)), labels] = 1
        return x, one_hot

    def _read(self, filename: str) -> np.ndarray | None:
        if filename in self._skipped:
            return None
        path = os.path.join(self.directory, filename)
        try:
            img = load_img(path, self.color_mode, self.target_size, self.interpolation)
        except _READ_ERRORS as err:
            if self.on_error == "raise":
                raise ValueError(
                    f"Could not read the image file {path!r}. Received: {type(err).__name__}: {err}"
                ) from err
            if self.class_mode is None or not self.shuffle:
                raise ValueError(
                    f"Could not read the image file {path!r} (its header was readable when the "
                    "iterator was built). Batches read in order (shuffle=False or "
                    "class_mode=None, as for predict) keep their rows aligned with "
                    "`filenames`, so the file cannot be left out; remove it and rebuild the "
                    f"iterator. Received: {type(err).__name__}: {err}"
                ) from err
            with self._lock:
                first_time = filename not in self._skipped
                self._skipped.add(filename)
            if first_time:
                logger.warning(
                    "Skipping unreadable image file %r (%s: %s).", path, type(err).__name__, err
                )
            return None
        return img_to_array(img, self.dtype)

    def __repr__(self) -> str:
        return (
            f"<DirectoryIterator {self.directory!r}: {self.samples} images, "
            f"{self.num_classes} classes, {len(self)} batches of {self.batch_size}>"
        )
