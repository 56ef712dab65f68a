"""The fast.ai fine-tuning flow: image folders -> VGG-style base -> new frozen-base classifier."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

import minidl
from minidl.applications import finetune, preprocess_input, vgg_like
from minidl.data import ImageDataGenerator, flow_from_directory
from minidl.layers import Dense
from minidl.optimizers import SGD

from .example_scripts import load_example


@pytest.fixture(scope="module")
def two_class_root(tmp_path_factory) -> str:
    """Dark and bright noisy 32x32 images, six per class."""
    root = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(0)
    for label, level in (("dark", 60), ("bright", 190)):
        os.makedirs(root / label)
        for k in range(6):
            pixels = np.clip(rng.normal(level, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{k}.png")
    return str(root)


def test_finetune_step_changes_only_the_new_classifier(backend, two_class_root):
    minidl.set_random_seed(0)
    model = vgg_like(
        input_shape=(32, 32, 3),
        widths=(2, 2, 3, 3, 3),
        dense_units=8,
        classes=5,
        kernel_initializer="he_uniform",
        name="base",
    )
    batches = ImageDataGenerator(horizontal_flip=True).flow_from_directory(
        two_class_root, target_size=(32, 32), batch_size=4, seed=0
    )
    frozen = {layer.name: layer.get_weights() for layer in model.layers[:-1]}
    finetune(model, batches.num_classes)
    new_layer = model.layers[-1]
    assert isinstance(new_layer, Dense) and new_layer.units == 2
    assert model.output_shape == (None, 2) and len(model.layers) == len(frozen) + 1
    assert all(not layer.trainable for layer in model.layers[:-1]) and new_layer.trainable
    model.compile(
        optimizer=SGD(learning_rate=0.5), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    new_before = new_layer.get_weights()
    history = model.fit(batches, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    for layer in model.layers[:-1]:
        for now, then in zip(layer.get_weights(), frozen[layer.name]):
            np.testing.assert_array_equal(now, then, err_msg=layer.name)
    for now, then in zip(new_layer.get_weights(), new_before):  # kernel and bias both learn
        assert not np.array_equal(now, then)

    test_batches = flow_from_directory(
        two_class_root, target_size=(32, 32), class_mode=None, shuffle=False, batch_size=5
    )
    probabilities = model.predict(test_batches, verbose=0)
    assert probabilities.shape == (12, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    loss, accuracy = model.evaluate(
        flow_from_directory(two_class_root, target_size=(32, 32), batch_size=5), verbose=0
    )
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0


def test_finetune_rejects_a_bad_class_count():
    model = vgg_like(input_shape=(32, 32, 3), widths=(1,) * 5, dense_units=2, classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        finetune(model, 0)


def test_example_flow_arranges_kaggle_files_and_writes_a_submission(tmp_path, capsys):
    example = load_example("dogs_vs_cats.py")
    kaggle = tmp_path / "kaggle"
    rng = np.random.default_rng(0)
    for split, names in (
        ("train", [f"{animal}.{k}.jpg" for animal in ("cat", "dog") for k in range(4)]),
        ("test", [f"{k}.jpg" for k in (10, 2, 1)]),
    ):
        os.makedirs(kaggle / split)
        for name in names:
            level = 60 if name.startswith("cat") else 190
            pixels = np.clip(rng.normal(level, 30, (40, 36, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(kaggle / split / name)
    data = tmp_path / "data"
    example.prepare_kaggle(kaggle, data, valid_per_class=1)
    assert sorted(os.listdir(data)) == ["test", "train", "valid"]
    assert (
        len(os.listdir(data / "train" / "dogs")) == 3
        and len(os.listdir(data / "valid" / "cats")) == 1
    )
    assert sorted(os.listdir(data / "test" / "unknown")) == ["1.jpg", "10.jpg", "2.jpg"]

    minidl.set_random_seed(0)
    model = vgg_like(input_shape=(32, 32, 3), widths=(2,) * 5, dense_units=4, classes=5)
    args = example.parse_args(
        [
            "--data",
            str(data),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--submission",
            str(tmp_path / "submission.csv"),
        ]
    )
    generator = ImageDataGenerator(preprocessing_function=preprocess_input)
    results = example.finetune_and_submit(model, data, generator, (32, 32), args, "dogs")
    assert 0.0 <= results["val_accuracy"] <= 1.0
    assert "validation accuracy" in capsys.readouterr().out
    with open(tmp_path / "submission.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "label"] and [row[0] for row in rows[1:]] == ["1", "2", "10"]
    assert all(0.05 <= float(row[1]) <= 0.95 for row in rows[1:])
