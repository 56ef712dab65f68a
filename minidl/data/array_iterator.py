"""``ImageDataGenerator.flow``: augmented batches from in-memory arrays (Keras 2's iterator).

Batch ``i`` of epoch ``e`` depends only on the seed, ``e`` and ``i``; each image's random
transform is keyed by the seed, the epoch and its position in the epoch, so an image flow and
a mask flow with the same seed, batch size and geometric settings stay aligned.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minidl.data.augmentation import ImageDataGenerator
from minidl.data.batch_order import BatchIterator, batch_index


class NumpyArrayIterator(BatchIterator):
    """Sequence-like and iterator over ``(x, y)`` batches (``x`` alone when ``y`` is None).

    ``len(it)`` is the number of batches per epoch; ``it[i]`` is batch ``i`` of the current
    epoch; ``next(it)`` runs through epochs forever (``model.fit`` takes either form).
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        image_data_generator: ImageDataGenerator,
        batch_size: int = 32,
        shuffle: bool = False,
        sample_weight: Any = None,
        seed: int | None = None,
        data_format: str | None = None,
        save_to_dir: str | os.PathLike | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: str | None = None,
        dtype: str | None = None,
    ) -> None:
        generator = image_data_generator
        x = np.asarray(x, dtype=dtype or generator.dtype)
        if x.ndim != 4:
            raise ValueError(
                "Input data in NumpyArrayIterator should have rank 4 (samples, height, width, "
                f"channels). Received: an array of shape {x.shape}"
            )
        y = None if y is None else np.asarray(y)
        sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        for name, other in (("y", y), ("sample_weight", sample_weight)):
            if other is not None and len(other) != len(x):
                raise ValueError(
                    f"`x` (images) and `{name}` should have the same length. "
                    f"Received: x.shape={x.shape}, {name}.shape={other.shape}"
                )
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(
                    f"`subset` must be 'training', 'validation' or None. Received: {subset!r}"
                )
            if not generator.validation_split:
                raise ValueError(
                    "`subset` needs an ImageDataGenerator created with validation_split > 0. "
                    f"Received: validation_split={generator.validation_split}"
                )
            split = int(len(x) * generator.validation_split)  # Keras 2: validation first
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x = x[part]
            y = None if y is None else y[part]
            sample_weight = None if sample_weight is None else sample_weight[part]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
        if data_format not in (None, generator.data_format):
            raise ValueError(
                f"`data_format` must match the generator's {generator.data_format!r}. "
                f"Received: data_format={data_format!r}"
            )
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.image_data_generator = generator
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else int(seed)
        self.save_to_dir = None if save_to_dir is None else os.fspath(save_to_dir)
        self.save_prefix, self.save_format = save_prefix, save_format
        self.n = len(x)
        self._start_epochs()

    def _no_batch_message(self) -> str:
        return "NumpyArrayIterator has no samples; there is no batch."

    def __getitem__(self, index: int) -> Any:
        """Batch ``index`` of the current epoch."""
        index = batch_index(index, len(self))
        start = index * self.batch_size
        positions = range(start, min(start + self.batch_size, self.n))
        samples = self.index_array[start : start + self.batch_size]
        generator = self.image_data_generator
        images = []
        for position, sample in zip(positions, samples):
            rng = np.random.default_rng([self.seed, self.epoch, position])
            image = generator.random_transform(self.x[sample], rng)
            images.append(generator.standardize(image))
        batch_x = np.stack(images).astype(generator.dtype, copy=False)
        if self.save_to_dir:
            self._save(batch_x, index)
        if self.y is None:
            return batch_x
        if self.sample_weight is None:
            return batch_x, self.y[samples]
        return batch_x, self.y[samples], self.sample_weight[samples]

    def _save(self, batch_x: np.ndarray, index: int) -> None:
        from minidl.preprocessing.image import save_img

        for k, image in enumerate(batch_x):
            name = f"{self.save_prefix}_{self.epoch}_{index}_{k}.{self.save_format}"
            save_img(
                os.path.join(self.save_to_dir, name),
                image,
                data_format=self.image_data_generator.data_format,
            )
