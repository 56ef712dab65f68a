"""The issue-10 layers inside functional models, on every backend and against Keras 3.

One small encoder-decoder with skip connections uses every new layer (the functional merge
forms, Conv2DTranspose with and without output_padding, UpSampling2D nearest and bilinear,
Cropping2D, dilated Conv2D, SpatialDropout2D and a Lambda). After ``set_weights`` with the
same arrays it gives the same predictions and the same training losses on every installed
backend; it saves and loads (the Lambda through ``custom_objects``); and when Keras 3 is
installed (a test-only reference) it gives Keras 3's predictions with the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from minidl import backend as K
from minidl import layers
from minidl.models import Model, model_from_json

from .conftest import installed_backends
from .lambda_saving import save_and_reload_lambda_model

RTOL, ATOL = 1e-5, 1e-6
INPUT_SHAPE = (8, 8, 2)


def halve(x):
    return x * 0.5


def _skip_net(lib, dropout: float = 0.3) -> tuple:
    """The same graph written with ``lib`` (minidl.layers or keras.layers)."""
    inputs = lib.Input(shape=INPUT_SHAPE)
    a = lib.Conv2D(4, 3, padding="same", activation="relu", name="enc1")(inputs)
    d = lib.Conv2D(4, 3, padding="same", dilation_rate=2, name="dilated")(a)
    down = lib.MaxPooling2D(2)(d)  # 4x4
    b = lib.Conv2D(6, 3, padding="same", activation="tanh", name="enc2")(down)
    up_t = lib.Conv2DTranspose(4, 2, strides=2, name="up_t")(b)  # 8x8, kernel == strides
    up_p = lib.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1, name="up_p")(
        b
    )  # 8x8
    up_n = lib.UpSampling2D(2, name="up_n")(b)  # 8x8x6
    up_b = lib.UpSampling2D(2, interpolation="bilinear", name="up_b")(b)
    merged = lib.concatenate([a, up_t, up_p, lib.add([up_n, up_b])], name="cat")  # 8x8x18
    mixed = lib.Conv2D(4, 1, name="mix")(merged)
    gates = [
        lib.subtract([mixed, a]),
        lib.multiply([mixed, up_t]),
        lib.average([mixed, up_p]),
        lib.maximum([mixed, a]),
        lib.minimum([mixed, up_t]),
    ]
    total = lib.add(gates)
    cropped = lib.Cropping2D(((1, 0), (0, 1)), name="crop")(total)  # 7x7
    dropped = lib.SpatialDropout2D(dropout, name="sdrop")(cropped)
    scaled = lib.Lambda(halve, name="halve")(dropped)
    outputs = lib.Conv2D(1, 3, padding="same", activation="sigmoid", name="out")(scaled)
    return inputs, outputs


def _minidl_net(dropout: float = 0.3) -> Model:
    inputs, outputs = _skip_net(layers, dropout)
    return Model(inputs, outputs)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, *INPUT_SHAPE)).astype("float32")
    y = (rng.uniform(size=(4, 7, 7, 1)) > 0.5).astype("float32")
    return x, y


def _reference_weights(model: Model) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [(w + rng.uniform(-0.1, 0.1, w.shape)).astype("float32") for w in model.get_weights()]


def test_same_predictions_and_training_on_every_backend():
    x, y = _data()
    results, weights = {}, None
    previous = K.name()
    try:
        for name in installed_backends():
            K.set_backend(name)
            model = _minidl_net(dropout=0.0)  # random masks differ between backends
            weights = weights or _reference_weights(model)
            model.set_weights(weights)
            model.compile(optimizer="sgd", loss="binary_crossentropy")
            before = model.predict(x)
            history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
            results[name] = (before, history.history["loss"], model.predict(x))
    finally:
        K.set_backend(previous)
    assert results[next(iter(results))][0].shape == (4, 7, 7, 1)
    first, *others = results
    for name in others:
        for got, want in zip(results[name], results[first]):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)
    losses = results[first][1]
    assert losses[1] < losses[0]


def test_save_and_load_with_the_lambda_in_custom_objects(backend, tmp_path):
    x, _ = _data()
    model = _minidl_net()
    model.set_weights(_reference_weights(model))
    want = model.predict(x)
    loaded = save_and_reload_lambda_model(
        model, str(tmp_path / "skip.h5"), "halve", {"halve": halve}
    )
    np.testing.assert_allclose(loaded.predict(x), want, rtol=RTOL, atol=ATOL)
    rebuilt = model_from_json(model.to_json(), custom_objects={"halve": halve})
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x), want, rtol=RTOL, atol=ATOL)
    kinds = [type(layer).__name__ for layer in rebuilt.layers]
    for kind in ("Conv2DTranspose", "UpSampling2D", "Cropping2D", "Concatenate", "Lambda"):
        assert kind in kinds


def test_same_predictions_as_keras3():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the Keras 3 reference runs on its tensorflow backend here")
    x, _ = _data()
    inputs, outputs = _skip_net(_KerasLib(keras))
    reference = keras.Model(inputs, outputs)
    model = _minidl_net()
    weights = _reference_weights(model)
    model.set_weights(weights)
    reference.set_weights(weights)
    np.testing.assert_allclose(
        model.predict(x), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


class _KerasLib:
    """Keras 3's layers under Keras 2's functional names (``concatenate``, ``add``, ...)."""

    def __init__(self, keras) -> None:
        self._layers = keras.layers
        self.Input = keras.Input

    def __getattr__(self, name: str):
        return getattr(self._layers, name)
