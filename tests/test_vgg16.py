"""VGG16: architecture and sizes, Keras weight files (good and bad), ImageNet helpers."""

from __future__ import annotations

import os
import re
import shutil

import h5py
import numpy as np
import pytest

from minidl.applications import (
    VGG16,
    decode_predictions,
    load_keras_h5_weights,
    preprocess_input,
    vgg_like,
)
from minidl.applications.vgg16 import WEIGHTS_FILE, WEIGHTS_FILE_NO_TOP

KERAS_LAYER_NAMES = [
    *(f"block1_conv{i}" for i in (1, 2)),
    "block1_pool",
    *(f"block2_conv{i}" for i in (1, 2)),
    "block2_pool",
    *(f"block3_conv{i}" for i in (1, 2, 3)),
    "block3_pool",
    *(f"block4_conv{i}" for i in (1, 2, 3)),
    "block4_pool",
    *(f"block5_conv{i}" for i in (1, 2, 3)),
    "block5_pool",
]
TOP_NAMES = ["flatten", "fc1", "fc2", "predictions"]


# ----------------------------------------------------------------- a naive reference network
def _conv3x3_same_relu(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3x3 'same' cross-correlation as a sum of nine shifted matrix products (float64)."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for i in range(3):
        for j in range(3):
            out += padded[:, i : i + height, j : j + width, :] @ kernel[i, j]
    return np.maximum(out + bias, 0.0)


def _max_pool_2x2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _reference_features(x: np.ndarray, weights: dict[str, list[np.ndarray]]) -> np.ndarray:
    """VGG16's convolutional base, written out with NumPy loops over blocks."""
    out = x.astype("float64")
    for name in KERAS_LAYER_NAMES:
        if name.endswith("pool"):
            out = _max_pool_2x2(out)
        else:
            kernel, bias = weights[name]
            out = _conv3x3_same_relu(out, kernel.astype("float64"), bias.astype("float64"))
    return out


def _random_weights(widths=(64, 128, 256, 512, 512), channels=3, seed=0):
    """He-scaled weights for VGG16's convolutional base, keyed by Keras layer name."""
    rng = np.random.default_rng(seed)
    weights, fan_in = {}, channels
    for name in KERAS_LAYER_NAMES:
        if name.endswith("pool"):
            continue
        out = widths[int(name[5]) - 1]
        kernel = rng.standard_normal((3, 3, fan_in, out)) * np.sqrt(2.0 / (9 * fan_in))
        bias = rng.uniform(-0.1, 0.1, out)
        weights[name] = [kernel.astype("float32"), bias.astype("float32")]
        fan_in = out
    return weights


def _write_keras_file(path, weights, names=None, keras1_names=True, attrs=None):
    """A weight file in Keras 2's HDF5 layout, written with h5py alone."""
    names = list(weights) if names is None else names
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [n.encode() for n in names]
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        for name in names:
            group = handle.create_group(name)
            arrays = weights.get(name, [])
            if keras1_names:  # the published VGG16 files use these names
                weight_names = [f"{name}_W_1:0", f"{name}_b_1:0"][: len(arrays)]
            else:
                weight_names = [f"{name}/kernel:0", f"{name}/bias:0"][: len(arrays)]
            group.attrs["weight_names"] = [w.encode() for w in weight_names]
            for weight_name, array in zip(weight_names, arrays):
                group.create_dataset(weight_name, data=array)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A no-top VGG16 weight file in the published files' naming, its weights, and a
    preprocessed input with the reference network's output for it (computed once)."""
    weights = _random_weights()
    path = str(tmp_path_factory.mktemp("weights") / WEIGHTS_FILE_NO_TOP)
    _write_keras_file(path, weights, names=KERAS_LAYER_NAMES)  # pools listed without weights
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    x = preprocess_input(images)
    return path, weights, x, _reference_features(x, weights)


# ------------------------------------------------------------------------------ the network
def test_vgg16_sizes_and_names_match_keras():
    top = VGG16()
    assert [layer.name for layer in top.layers] == KERAS_LAYER_NAMES + TOP_NAMES
    assert top.count_params() == 138_357_544
    assert top.input_shape == (None, 224, 224, 3) and top.output_shape == (None, 1000)
    del top
    base = VGG16(include_top=False)
    assert [layer.name for layer in base.layers] == KERAS_LAYER_NAMES
    assert base.count_params() == 14_714_688
    assert base.output_shape == (None, None, None, 512)
    for pooling in ("avg", "max"):
        pooled = VGG16(include_top=False, pooling=pooling, input_shape=(64, 48, 3))
        assert pooled.count_params() == 14_714_688 and pooled.output_shape == (None, 512)


def test_vgg16_rejects_bad_arguments(tmp_path, monkeypatch):
    for kwargs in (
        {"include_top": False, "input_shape": (31, 64, 3)},
        {"include_top": True, "input_shape": (None, None, 3)},
        {"input_shape": (64, 64)},
        {"include_top": False, "pooling": "sum"},
        {"weights": "imagenet", "classes": 10},
        {"weights": "some.h5", "input_shape": (64, 64, 1), "include_top": False},
    ):
        with pytest.raises(ValueError, match="Received"):
            VGG16(**kwargs)
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path / "minidl"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(ValueError, match=WEIGHTS_FILE) as info:
        VGG16(weights="imagenet")
    assert str(tmp_path / "minidl" / "models") in str(info.value)
    with pytest.raises(ValueError, match="never downloads"):
        VGG16(weights="imagenet", include_top=False)


def test_weight_file_loads_and_matches_reference_on_every_backend(backend, vgg_file):
    path, weights, x, expected = vgg_file
    model = VGG16(include_top=False, weights=path, input_shape=(32, 32, 3))
    for name, arrays in weights.items():
        for got, want in zip(model.get_layer(name).get_weights(), arrays):
            np.testing.assert_array_equal(got, want)
    got = model.predict(x, verbose=0)
    assert got.shape == (2, 1, 1, 512) and expected.max() > 1
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_imagenet_weights_are_found_in_the_models_folder(vgg_file, tmp_path, monkeypatch):
    path, weights, _, _ = vgg_file
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    os.makedirs(tmp_path / "models")
    shutil.copy(path, tmp_path / "models" / WEIGHTS_FILE_NO_TOP)
    model = VGG16(include_top=False, weights="imagenet", input_shape=(32, 32, 3), pooling="max")
    np.testing.assert_array_equal(
        model.get_layer("block5_conv3").get_weights()[1], weights["block5_conv3"][1]
    )


# ------------------------------------------------------------------- weight files, small model
def _small(**kwargs):
    return vgg_like(
        input_shape=(32, 32, 3), widths=(2, 3, 4, 4, 4), dense_units=5, classes=3, **kwargs
    )


def _small_file_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    return {
        layer.name: [rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()]
        for layer in model.layers
        if layer.get_weights()
    }


def test_keras2_names_theano_kernels_and_extra_layers(tmp_path):
    model = _small()
    weights = _small_file_weights(model)
    path = str(tmp_path / "keras2.h5")
    extra = {**weights, "unused_dense": [np.ones((2, 2), "float32")]}
    _write_keras_file(path, extra, keras1_names=False)
    load_keras_h5_weights(model, path)
    np.testing.assert_array_equal(model.get_layer("fc2").get_weights()[0], weights["fc2"][0])
    flipped = {k: [a[::-1, ::-1] if a.ndim == 4 else a for a in v] for k, v in weights.items()}
    theano_path = str(tmp_path / "theano.h5")
    _write_keras_file(theano_path, flipped, attrs={"backend": b"theano"})
    other = _small()
    load_keras_h5_weights(other, theano_path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def _bad_files(tmp_path, model):
    """Each broken file, with the words its error must contain."""
    weights = _small_file_weights(model)
    cases = []
    missing = {k: v for k, v in weights.items() if k != "fc2"}  # a late layer
    _write_keras_file(str(tmp_path / "missing.h5"), missing)
    cases.append(("missing.h5", ["'fc2'", "missing", "(5, 5)"]))
    wrong = dict(weights, predictions=[np.zeros((5, 4), "float32"), np.zeros(4, "float32")])
    _write_keras_file(str(tmp_path / "wrong_shape.h5"), wrong)
    cases.append(("wrong_shape.h5", ["'predictions'", "(5, 3)", "(5, 4)"]))
    (tmp_path / "not_hdf5.h5").write_text("just some text, not HDF5")
    cases.append(("not_hdf5.h5", ["not_hdf5.h5", "HDF5"]))
    _write_keras_file(str(tmp_path / "whole.h5"), weights)
    data = (tmp_path / "whole.h5").read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) * 2 // 3])
    cases.append(("truncated.h5", ["truncated.h5", "truncated"]))
    with h5py.File(tmp_path / "no_layout.h5", "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    cases.append(("no_layout.h5", ["layer_names"]))
    return cases


def test_bad_weight_files_fail_clearly_and_change_nothing(tmp_path):
    model = _small()
    before = [w.copy() for w in model.get_weights()]
    for filename, words in _bad_files(tmp_path, model):
        with pytest.raises(ValueError) as info:
            load_keras_h5_weights(model, str(tmp_path / filename))
        for word in words:
            assert word in str(info.value), (filename, str(info.value))
        for now, then in zip(model.get_weights(), before):
            np.testing.assert_array_equal(now, then)
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        load_keras_h5_weights(model, str(tmp_path / "absent.h5"))
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        VGG16(weights=str(tmp_path / "absent.h5"))


# ----------------------------------------------------------------------- ImageNet helpers
def test_preprocess_input_caffe_mode_copies_and_checks_shape():
    images = np.random.default_rng(0).uniform(0, 255, (2, 4, 5, 3)).astype("float32")
    original = images.copy()
    out = preprocess_input(images)
    np.testing.assert_array_equal(images, original)  # the input is left alone
    mean_bgr = np.array([103.939, 116.779, 123.68], "float32")
    np.testing.assert_allclose(out, images[..., ::-1] - mean_bgr, rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == images.shape
    as_uint8 = preprocess_input(np.full((4, 4, 3), 200, np.uint8))
    np.testing.assert_allclose(as_uint8[0, 0], 200 - mean_bgr, rtol=1e-6)
    np.testing.assert_allclose(preprocess_input(images, mode="tf"), images / 127.5 - 1, rtol=1e-6)
    for bad in (np.zeros((2, 4, 4, 4)), np.zeros(5), np.float32(1.0)):
        with pytest.raises(ValueError, match=r"Received: an array of shape"):
            preprocess_input(bad)
    with pytest.raises(ValueError, match="mode"):
        preprocess_input(images, mode="bgr")


def test_decode_predictions_uses_the_shipped_class_index():
    preds = np.full((2, 1000), 1e-4, "float32")
    preds[0, [0, 281, 999]] = [0.2, 0.7, 0.1]
    preds[1, 340] = 0.9
    first, second = decode_predictions(preds, top=3)
    assert [entry[:2] for entry in first] == [
        ("n02123045", "tabby"),
        ("n01440764", "tench"),
        ("n15075141", "toilet_tissue"),
    ]
    assert first[0][2] == pytest.approx(0.7) and len(second) == 3
    assert second[0][:2] == ("n02391049", "zebra")
    assert len(decode_predictions(preds)[0]) == 5
    for bad in (np.zeros(1000), np.zeros((2, 10)), np.zeros((1, 1, 1000))):
        with pytest.raises(ValueError, match=re.escape(f"Received: an array of shape {bad.shape}")):
            decode_predictions(bad)
    with pytest.raises(ValueError, match="top"):
        decode_predictions(preds, top=0)


@pytest.mark.slow
def test_matches_keras_vgg16_on_a_file_keras_wrote(tmp_path):
    """Keras' own VGG16 writes a Keras 2 weight file; minidl's VGG16 must reproduce its outputs."""
    keras = pytest.importorskip("keras")
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    reference.set_weights(
        [
            rng.standard_normal(w.shape).astype("float32")
            * np.float32(np.sqrt(2 / np.prod(w.shape[:-1])) if w.ndim > 1 else 0.05)
            for w in reference.get_weights()
        ]
    )
    path = str(tmp_path / "keras_vgg16_notop.h5")
    with h5py.File(path, "w") as handle:
        legacy.save_weights_to_hdf5_group(handle, reference)
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    keras_x = keras.applications.vgg16.preprocess_input(images.copy())
    expected = reference.predict(keras_x, verbose=0)
    np.testing.assert_allclose(preprocess_input(images), keras_x, rtol=1e-6)
    model = VGG16(include_top=False, weights=path, input_shape=(32, 32, 3))
    got = model.predict(preprocess_input(images), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
