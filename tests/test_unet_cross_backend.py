"""A depth-3 U-Net gives the same predictions and training losses on every backend, and Keras 3's.

The U-Net has skip connections through ``Concatenate``, upsampling through
``Conv2DTranspose`` and ``UpSampling2D``, and ``BatchNormalization`` after each convolution.
One seed gives the same initial weights on every backend (NumPy initializers); each backend
predicts, then trains three epochs of Adam without shuffling. Keras 3 (a test-only reference,
skipped when absent) builds the same network with the same layer names and weights, and the
HDF5 file it saves loads into minidl's U-Net by layer order and by name.
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl import layers as minidl_layers
from minidl.models import Model
from tests.conftest import installed_backends

RTOL = 1e-5  # relative difference allowed between two backends (predictions and losses)
KERAS_RTOL, KERAS_ATOL = 1e-5, 1e-6  # minidl vs Keras 3 predictions (sigmoid outputs)
SIZE, BASE = 16, 4

RNG = np.random.default_rng(21)
IMAGES = RNG.normal(size=(8, SIZE, SIZE, 1)).astype("float32")
MASKS = (np.abs(IMAGES) > 0.8).astype("float32")


def build_unet(layers: object, seed: int | None = 0) -> object:
    """The U-Net built from ``layers`` (``minidl.layers`` or ``keras.layers``), named layers."""
    if seed is not None:
        minidl.set_random_seed(seed)
    conv_count = iter(range(100))

    def block(x, filters):
        for _ in range(2):
            index = next(conv_count)
            x = layers.Conv2D(filters, 3, padding="same", name=f"conv{index}")(x)
            x = layers.BatchNormalization(name=f"bn{index}")(x)
            x = layers.Activation("relu", name=f"relu{index}")(x)
        return x

    inputs = layers.Input(shape=(SIZE, SIZE, 1), name="image")
    skips, x = [], inputs
    for depth in range(3):
        x = block(x, BASE * 2**depth)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{depth}")(x)
    x = block(x, BASE * 8)
    for depth in reversed(range(3)):
        if depth == 1:
            x = layers.UpSampling2D(2, name=f"up{depth}")(x)
        else:
            x = layers.Conv2DTranspose(
                BASE * 2**depth, 2, strides=2, padding="same", name=f"up{depth}"
            )(x)
        x = layers.Concatenate(name=f"skip{depth}")([x, skips[depth]])
        x = block(x, BASE * 2**depth)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    model_class = Model if layers.__name__.startswith("minidl") else _keras().Model
    return model_class(inputs, outputs, name="unet")


def _keras():
    import keras

    return keras


def _run(backend: str, train: bool) -> tuple[np.ndarray, list[float]]:
    """Predict with the initial weights, then (when ``train``) the loss of each epoch."""
    previous = K.name()
    K.set_backend(backend)
    try:
        model = build_unet(minidl_layers)
        prediction = model.predict(IMAGES, batch_size=4)
        if not train:
            return prediction, []
        model.compile(minidl.optimizers.Adam(learning_rate=0.01), "binary_crossentropy")
        history = model.fit(IMAGES, MASKS, batch_size=4, epochs=3, shuffle=False, verbose=0)
        return prediction, history.history["loss"]
    finally:
        K.set_backend(previous)


def _compare_backends(train: bool) -> None:
    names = installed_backends()
    if len(names) < 2:
        pytest.skip("needs at least two installed backends")
    results = {name: _run(name, train) for name in names}
    reference_prediction, reference_losses = results[names[0]]
    if train:
        assert reference_losses[-1] < reference_losses[0]
    for name in names[1:]:
        prediction, losses = results[name]
        np.testing.assert_allclose(prediction, reference_prediction, rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(losses, reference_losses, rtol=RTOL, err_msg=name)


def test_unet_layers_and_shapes():
    model = build_unet(minidl_layers)
    assert model.output_shape == (None, SIZE, SIZE, 1)
    assert model.get_layer("skip0").input_shape == [(None, 16, 16, 4), (None, 16, 16, 4)]
    assert isinstance(model.get_layer("up1"), minidl_layers.UpSampling2D)
    assert isinstance(model.get_layer("up0"), minidl_layers.Conv2DTranspose)
    kinds = {type(layer) for layer in model.layers}
    assert {
        minidl_layers.BatchNormalization,
        minidl_layers.Concatenate,
        minidl_layers.Conv2D,
        minidl_layers.MaxPooling2D,
    } <= kinds
    assert type(minidl_layers.Input(shape=(2,))).__name__ == "KerasTensor"


def test_unet_predictions_agree_on_every_backend():
    _compare_backends(train=False)


@pytest.mark.slow  # tensorflow compiles the U-Net's training step in ~25 s on a busy CPU
def test_unet_predictions_and_training_losses_agree_on_every_backend():
    _compare_backends(train=True)


def test_unet_predicts_like_keras_3_with_the_same_weights(tmp_path):
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3, found {keras.__version__}")
    ours = build_unet(minidl_layers)
    rng = np.random.default_rng(3)
    for layer in ours.layers:  # non-trivial batch-norm statistics, so inference uses them
        if isinstance(layer, minidl_layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.2, mean.shape).astype("float32"),
                    rng.uniform(0.5, 2.0, variance.shape).astype("float32"),
                ]
            )
    theirs = build_unet(keras.layers, seed=None)
    assert {layer.name for layer in theirs.layers} == {layer.name for layer in ours.layers}
    for layer in ours.layers:
        theirs.get_layer(layer.name).set_weights(layer.get_weights())
    expected = np.asarray(theirs.predict(IMAGES, verbose=0))
    np.testing.assert_allclose(ours.predict(IMAGES), expected, rtol=KERAS_RTOL, atol=KERAS_ATOL)
    path = tmp_path / "keras_unet.h5"  # Keras' HDF5 file, weights in Keras 2's layout
    theirs.save(path)
    for by_name in (False, True):
        loaded = build_unet(minidl_layers, seed=7)
        loaded.load_weights(path, by_name=by_name)
        np.testing.assert_allclose(
            loaded.predict(IMAGES), expected, rtol=KERAS_RTOL, atol=KERAS_ATOL, err_msg=by_name
        )
