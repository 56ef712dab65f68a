"""The fast.ai fine-tuning flow: image folders -> VGG-style base -> new frozen-base classifier."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from minidl.applications import finetune, vgg_like
from minidl.data import ImageDataGenerator, flow_from_directory
from minidl.layers import Dense
from minidl.optimizers import SGD


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
    model = vgg_like(
        input_shape=(32, 32, 3), widths=(2, 2, 3, 3, 3), dense_units=6, classes=5, name="base"
    )
    batches = ImageDataGenerator(rescale=1 / 255, horizontal_flip=True).flow_from_directory(
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
    assert not np.array_equal(new_layer.get_weights()[0], new_before[0])

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
