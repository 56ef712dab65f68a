"""Fine-tune VGG16 to tell dogs from cats (fast.ai lesson 1), or run the same flow on a demo set.

The flow: build VGG16 with Keras' ImageNet weights, read batches from ``DATA/train`` and
``DATA/valid``, fine-tune (pop the 1000-way ``predictions`` layer, freeze every other layer,
add ``Dense(num_classes, softmax)``), compile, fit, report the validation accuracy, predict
``DATA/test`` and write a Kaggle submission (``id,label``: the dog probability clipped to
[0.05, 0.95], the id being the file name's stem).

Kaggle data ("Dogs vs. Cats Redux: Kernels Edition": ``train.zip`` has 25,000 labelled
images ``cat.0.jpg`` ... ``dog.12499.jpg``, ``test.zip`` has 12,500 unlabelled ``1.jpg`` ...
``12500.jpg``) must be arranged one folder per class::

    DATA/
      train/cats/cat.0.jpg ...     train/dogs/dog.0.jpg ...
      valid/cats/cat.7.jpg ...     valid/dogs/dog.3.jpg ...   (held-out part of train.zip)
      test/unknown/1.jpg ... 12500.jpg                        (test.zip, one dummy class)

``--prepare KAGGLE_DIR`` does that from the unzipped ``KAGGLE_DIR/train/*.jpg`` and
``KAGGLE_DIR/test/*.jpg`` (hard links where possible, else copies; ``--valid-per-class``
images per class, default 1,000, go to ``valid``). The weights are Keras' file
``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` (about 550 MB; Keras' ``VGG16()`` downloads
it to ``~/.keras/models``, where ``weights="imagenet"`` also looks); minidl never downloads.

Without Kaggle data (``--demo``, the default when ``--data`` is not given) the script writes
scikit-learn's 8x8 digits, upscaled to 32x32 RGB PNGs, as a class-per-folder image set in a
temporary folder and runs the same flow with a small VGG-style network (VGG16's blocks with
fewer filters). As a stand-in for ImageNet weights it first trains that network on a
``pretrain`` split labelled with the ten digits and saves its weights to a Keras-layout file;
the fine-tuning task is then "low" (digits 0-4) against "high" (5-9), the positive class of
the submission being "high".

Run from the repository root (after ``pip install -e .``)::

    python examples/dogs_vs_cats.py                      # the demo, a few minutes on CPU
    python examples/dogs_vs_cats.py --prepare ~/kaggle/dogs-vs-cats --data ~/data/dogscats
    python examples/dogs_vs_cats.py --data ~/data/dogscats --backend tensorflow \\
        --weights ~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import minidl
from minidl import backend as K
from minidl.applications import (
    VGG16,
    finetune,
    load_keras_h5_weights,
    preprocess_input,
    vgg_like,
)
from minidl.data import DirectoryIterator, ImageDataGenerator
from minidl.optimizers import Adam

DEMO_SIZE = (32, 32)
DEMO_WIDTHS = (8, 16, 32, 32, 32)  # VGG16: (64, 128, 256, 512, 512)
DEMO_DENSE_UNITS = 64  # VGG16: 4096
DEMO_SPLITS = {"pretrain": 0.5, "train": 0.2, "valid": 0.15, "test": 0.15}


# ------------------------------------------------------------------------------ the flow
def get_batches(
    folder: str | os.PathLike,
    generator: ImageDataGenerator,
    target_size: tuple[int, int],
    batch_size: int,
    shuffle: bool = True,
    class_mode: str | None = "categorical",
) -> DirectoryIterator:
    """Batches from a class-per-folder image set (the lesson's ``get_batches``)."""
    return generator.flow_from_directory(
        folder,
        target_size=target_size,
        batch_size=batch_size,
        shuffle=shuffle,
        class_mode=class_mode,
        seed=0,
    )


def write_submission(path: str | os.PathLike, filenames: Sequence[str], positive: np.ndarray):
    """Write Kaggle's ``id,label`` CSV: the positive-class probability clipped to [0.05, 0.95]."""
    ids = [Path(name).stem for name in filenames]
    rows = sorted(zip(ids, np.clip(positive, 0.05, 0.95)), key=lambda r: (len(r[0]), r[0]))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        writer.writerows((image_id, f"{p:.4f}") for image_id, p in rows)


def finetune_and_submit(
    model: Any,
    data_dir: str | os.PathLike,
    generator: ImageDataGenerator,
    target_size: tuple[int, int],
    args: argparse.Namespace,
    positive_class: str,
) -> dict[str, float]:
    """Fine-tune ``model`` on ``data_dir``'s train/valid, predict test, write the submission."""
    data_dir = Path(data_dir)
    batches = get_batches(data_dir / "train", generator, target_size, args.batch_size)
    val_batches = get_batches(
        data_dir / "valid", generator, target_size, args.batch_size, shuffle=False
    )
    print(f"train: {batches.samples} images, classes {batches.class_indices}")
    print(f"valid: {val_batches.samples} images")
    finetune(model, batches.num_classes)
    model.compile(
        optimizer=Adam(learning_rate=args.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    # The iterator shuffles its images itself; reading batches in order lets it prefetch.
    model.fit(batches, epochs=args.epochs, validation_data=val_batches, shuffle=False, verbose=2)
    fit_seconds = time.perf_counter() - started
    val_loss, val_accuracy = model.evaluate(val_batches, verbose=0)
    test_batches = get_batches(
        data_dir / "test", generator, target_size, args.batch_size, False, None
    )
    probabilities = model.predict(test_batches)
    write_submission(
        args.submission,
        test_batches.filenames,
        probabilities[:, batches.class_indices[positive_class]],
    )
    print(f"fine-tuning: {fit_seconds:.1f} s for {args.epochs} epoch(s)")
    print(f"validation loss {val_loss:.4f}, validation accuracy {val_accuracy:.4f}")
    print(f"wrote {test_batches.samples} predictions to {args.submission}")
    return {"val_loss": val_loss, "val_accuracy": val_accuracy, "fit_seconds": fit_seconds}


# ---------------------------------------------------------------------------- Kaggle data
def prepare_kaggle(
    kaggle_dir: str | os.PathLike, data_dir: str | os.PathLike, valid_per_class=1000
):
    """Arrange Kaggle's flat ``train/`` and ``test/`` folders into the class-per-folder layout."""
    kaggle_dir, data_dir = Path(kaggle_dir), Path(data_dir)
    rng = np.random.default_rng(0)

    def place(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    for animal in ("cat", "dog"):
        images = sorted((kaggle_dir / "train").glob(f"{animal}.*.jpg"))
        if not images:
            raise ValueError(f"No {animal}.*.jpg in {kaggle_dir / 'train'}. Received: nothing")
        valid = set(rng.choice(len(images), size=valid_per_class, replace=False).tolist())
        for index, image in enumerate(images):
            split = "valid" if index in valid else "train"
            place(image, data_dir / split / f"{animal}s" / image.name)
    for image in sorted((kaggle_dir / "test").glob("*.jpg")):
        place(image, data_dir / "test" / "unknown" / image.name)
    print(f"arranged {kaggle_dir} into {data_dir}")


def run_kaggle(args: argparse.Namespace) -> dict[str, float]:
    """VGG16 with ImageNet weights, fine-tuned on DATA's cats and dogs."""
    if args.weights is None:
        print("warning: no --weights; the frozen VGG16 layers keep random values")
    model = VGG16(weights=args.weights)
    generator = ImageDataGenerator(preprocessing_function=preprocess_input)
    return finetune_and_submit(model, args.data, generator, (224, 224), args, "dogs")


# -------------------------------------------------------------------------------- demo data
def write_digit_folders(root: Path, seed: int = 0) -> None:
    """Write scikit-learn's digits as 32x32 RGB PNGs: ``pretrain/<digit>/`` and low/high splits."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    bounds = np.cumsum([0, *DEMO_SPLITS.values()]) * len(order)
    for (split, _), start, stop in zip(DEMO_SPLITS.items(), bounds[:-1], bounds[1:]):
        for index in order[int(start) : int(stop)]:
            digit = int(digits.target[index])
            if split == "pretrain":
                folder = root / split / str(digit)
            elif split == "test":
                folder = root / split / "unknown"
            else:
                folder = root / split / ("low" if digit < 5 else "high")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (digits.images[index] * (255 / 16)).astype(np.uint8)
            image = Image.fromarray(pixels).resize(DEMO_SIZE, Image.Resampling.BILINEAR)
            image.convert("RGB").save(folder / f"{index}.png")


def small_vgg(classes: int) -> Any:
    """VGG16's block structure with fewer filters, for 32x32 images."""
    return vgg_like(
        input_shape=(*DEMO_SIZE, 3),
        widths=DEMO_WIDTHS,
        dense_units=DEMO_DENSE_UNITS,
        classes=classes,
        kernel_initializer="he_uniform",  # trained from scratch: starts learning sooner
        name="small_vgg",
    )


def run_demo(args: argparse.Namespace) -> dict[str, float]:
    """The same flow on digits, with a small VGG pretrained on the ten-digit split."""
    root = Path(tempfile.mkdtemp(prefix="minidl_digits_"))
    try:
        write_digit_folders(root)
        print(f"wrote the digits image set to {root}")
        generator = ImageDataGenerator(preprocessing_function=preprocess_input)
        pretrain = get_batches(root / "pretrain", generator, DEMO_SIZE, args.batch_size)
        base = small_vgg(pretrain.num_classes)
        base.compile(Adam(learning_rate=1e-3), "categorical_crossentropy", ["accuracy"])
        started = time.perf_counter()
        print(f"stand-in for ImageNet: training on {pretrain.samples} images of ten digits")
        history = base.fit(pretrain, epochs=args.pretrain_epochs, shuffle=False, verbose=2)
        pretrain_seconds = time.perf_counter() - started
        weights_path = root / "small_vgg_digits.h5"
        base.save_weights(str(weights_path))

        model = small_vgg(pretrain.num_classes)
        load_keras_h5_weights(model, weights_path)  # as VGG16(weights=FILE) does
        results = finetune_and_submit(model, root, generator, DEMO_SIZE, args, "high")
        results["pretrain_accuracy"] = history.history["accuracy"][-1]
        results["pretrain_seconds"] = pretrain_seconds
        print(
            f"pretraining: {pretrain_seconds:.1f} s, final training accuracy "
            f"{results['pretrain_accuracy']:.4f}"
        )
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder with train/, valid/, test/ (Kaggle layout)")
    parser.add_argument("--weights", help="Keras VGG16 ImageNet weight file (.h5)")
    parser.add_argument("--demo", action="store_true", help="run on generated digit images")
    parser.add_argument("--prepare", metavar="KAGGLE_DIR", help="arrange Kaggle's unzipped data")
    parser.add_argument(
        "--valid-per-class", type=int, default=1000, help="--prepare: validation images per class"
    )
    parser.add_argument("--backend", help="numpy, theano or tensorflow (default: MINIDL_BACKEND)")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int, default=8, help="demo pretraining epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="images per batch")
    parser.add_argument("--learning-rate", type=float, help="Adam learning rate for fine-tuning")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--submission", default="submission.csv", help="output CSV path")
    args = parser.parse_args(argv)
    args.demo = args.demo or args.data is None
    if args.epochs is None:
        args.epochs = 5 if args.demo else 1
    if args.batch_size is None:
        args.batch_size = 32 if args.demo else 64
    if args.learning_rate is None:  # the demo has ~12 batches per epoch, Kaggle ~360
        args.learning_rate = 1e-2 if args.demo else 1e-3
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, float] | None:
    """Run the example; return its measured numbers."""
    args = parse_args(argv)
    try:
        if args.backend:
            K.set_backend(args.backend)
        K.current()  # loads the chosen backend now, so a missing extra is reported here
    except (ImportError, ValueError) as err:  # an unknown backend or a missing extra
        raise SystemExit(f"dogs_vs_cats.py: error: {err}") from None
    minidl.set_random_seed(args.seed)
    print(f"backend: {K.name()}")
    if args.prepare:
        if args.data is None:
            raise SystemExit("--prepare needs --data (where to write the arranged folders)")
        prepare_kaggle(args.prepare, args.data, args.valid_per_class)
    return run_demo(args) if args.demo else run_kaggle(args)


if __name__ == "__main__":
    main()
