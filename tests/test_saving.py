"""HDF5 weights and whole-model files: layout, round trips, Keras files, failures, backends."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl import saving
from minidl.layers import BatchNormalization, Dense
from minidl.models import Sequential, load_model

from .small_models import small_cnn

RNG = np.random.default_rng(2)
X = RNG.normal(size=(12, 4)).astype("float32")
Y = np.eye(3)[np.arange(12) % 3]
IMAGES = RNG.normal(size=(6, 6, 6, 2)).astype("float32")


def mlp(seed: int = 0, names=("hidden", "norm", "out")) -> Sequential:
    minidl.set_random_seed(seed)
    return Sequential(
        [
            Dense(5, input_dim=4, activation="relu", name=names[0]),
            BatchNormalization(name=names[1]),
            Dense(3, activation="softmax", name=names[2]),
        ]
    )


def cnn(seed: int = 0) -> Sequential:
    return small_cnn(seed)


def assert_same_weights(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_weights_file_uses_the_keras_2_layout(tmp_path):
    path = tmp_path / "w.h5"
    model = mlp()
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        assert list(f.attrs["layer_names"]) == [b"hidden", b"norm", b"out"]
        assert f.attrs["backend"] == K.name().encode() and "keras_version" in f.attrs
        assert list(f["hidden"].attrs["weight_names"]) == [b"hidden/kernel:0", b"hidden/bias:0"]
        assert list(f["norm"].attrs["weight_names"])[2] == b"norm/moving_mean:0"
        np.testing.assert_array_equal(f["hidden/hidden/kernel:0"][()], model.get_weights()[0])


def test_save_and_load_weights_round_trip(tmp_path):
    path = tmp_path / "w.h5"
    model = mlp(seed=0)
    model.save_weights(path)
    other = mlp(seed=1)
    other.load_weights(path)
    assert_same_weights(model.get_weights(), other.get_weights())
    np.testing.assert_array_equal(other.predict(X), model.predict(X))


def test_load_weights_by_order_ignores_names_and_by_name_matches_names(tmp_path):
    path = tmp_path / "w.h5"
    mlp(seed=0).save_weights(path)
    renamed = mlp(seed=1, names=("a", "b", "c"))
    renamed.load_weights(path)
    assert_same_weights(renamed.get_weights(), mlp(seed=0).get_weights())
    partial = mlp(seed=1, names=("hidden", "b", "c"))
    untouched = partial.get_weights()
    partial.load_weights(path, by_name=True)
    assert_same_weights(partial.get_weights()[:2], mlp(seed=0).get_weights()[:2])
    assert_same_weights(partial.get_weights()[2:], untouched[2:])


def test_by_name_with_skip_mismatch_skips_a_wrong_layer(tmp_path, caplog):
    path = tmp_path / "w.h5"
    mlp(seed=0).save_weights(path)
    minidl.set_random_seed(1)
    other = Sequential([Dense(5, input_dim=4, name="hidden"), Dense(7, name="out")])
    before = other.get_weights()
    with pytest.raises(ValueError, match="'out'"):
        other.load_weights(path, by_name=True)
    assert_same_weights(other.get_weights(), before)
    other.load_weights(path, by_name=True, skip_mismatch=True)
    assert_same_weights(other.get_weights()[:2], mlp(seed=0).get_weights()[:2])
    assert "Skipping loading weights of layer 'out'" in caplog.text


def write_keras_vgg_like_file(path, kernel, bias, dense_kernel, dense_bias):
    """What Keras 2 writes: weights of layer L at L/L/kernel:0, empty layers listed too."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"block1_conv1", b"block1_pool", b"flatten", b"predictions"]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for layer, weights in (
            ("block1_conv1", [("kernel:0", kernel), ("bias:0", bias)]),
            ("block1_pool", []),
            ("flatten", []),
            ("predictions", [("kernel:0", dense_kernel), ("bias:0", dense_bias)]),
        ):
            group = f.create_group(layer)
            names = [f"{layer}/{name}".encode() for name, _ in weights]
            group.attrs["weight_names"] = names
            for name, value in zip(names, weights):
                group.create_dataset(name.decode(), data=value[1])


def test_loads_a_keras_written_file_by_following_weight_names(tmp_path):
    path = tmp_path / "keras.h5"
    arrays = [RNG.normal(size=s).astype("float32") for s in [(3, 3, 2, 3), (3,), (12, 2), (2,)]]
    write_keras_vgg_like_file(path, *arrays)
    model = cnn()
    model.load_weights(path)
    assert_same_weights(model.get_weights(), arrays)


def test_wrong_shapes_name_the_layer_and_change_nothing(tmp_path):
    path = tmp_path / "keras.h5"
    arrays = [RNG.normal(size=s).astype("float32") for s in [(3, 3, 2, 3), (3,), (12, 5), (5,)]]
    write_keras_vgg_like_file(path, *arrays)
    model = cnn()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"Layer 'logits'.*expects shape \(12, 2\).*\(12, 5\)"):
        model.load_weights(path)
    assert_same_weights(model.get_weights(), before)


def test_layer_count_mismatch_changes_nothing(tmp_path):
    path = tmp_path / "w.h5"
    mlp().save_weights(path)
    model = cnn()
    before = model.get_weights()
    with pytest.raises(ValueError, match="holds weights for 3 layers"):
        model.load_weights(path)
    assert_same_weights(model.get_weights(), before)


def test_bad_files_are_reported_and_change_nothing(tmp_path):
    model = mlp()
    before = model.get_weights()
    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("not an HDF5 file")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        model.load_weights(not_hdf5)
    good = tmp_path / "good.h5"
    mlp(seed=5).save_weights(good)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(ValueError, match="truncated|damaged"):
        model.load_weights(truncated)
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.h5")
    strings = tmp_path / "strings.h5"
    mlp().save_weights(strings)
    with h5py.File(strings, "a") as f:
        del f["out/out/bias:0"]
        f["out"].create_dataset(
            "out/bias:0", data=np.array(["a", "b", "c"], dtype=object), dtype=h5py.string_dtype()
        )
    with pytest.raises(ValueError, match="must hold numbers"):
        model.load_weights(strings)
    assert_same_weights(model.get_weights(), before)


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "w.h5"
    mlp(seed=0).save_weights(path)
    original = path.read_bytes()

    def crash(group, model):
        group.create_group("half-written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(saving, "write_weights", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        mlp(seed=1).save_weights(path)
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["w.h5"]
    with pytest.raises(FileExistsError):
        saving.save_weights(mlp(), path, overwrite=False)


def test_whole_model_round_trip_keeps_compile_settings_and_optimizer_state(tmp_path):
    path = tmp_path / "model.h5"
    model = mlp()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    model.save(path)
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        training = json.loads(f.attrs["training_config"])
    assert config["class_name"] == "Sequential" and len(config["config"]["layers"]) == 3
    assert training["loss"] == "categorical_crossentropy" and training["metrics"] == ["accuracy"]
    restored = load_model(path)
    assert restored.metrics_names == ["loss", "accuracy"]
    assert type(restored.optimizer).__name__ == "Adam"
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    model.fit(X, Y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    restored.fit(X, Y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_uncompiled_and_nested_models_round_trip(tmp_path):
    path = tmp_path / "nested.h5"
    minidl.set_random_seed(3)
    base = Sequential([Dense(4, input_dim=4, name="inner")], name="base")
    model = Sequential([base, Dense(2, name="head")], name="outer")
    model.save(path)
    restored = load_model(path)
    assert restored.loss_function is None and restored.layers[0].name == "base"
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    restored.load_weights(path)


def test_load_model_rejects_a_broken_config(tmp_path):
    path = tmp_path / "model.h5"
    mlp().save(path)
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = b"{not json"
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(path)
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Dense", "config": {}}).encode()
    with pytest.raises(ValueError, match="Only models"):
        load_model(path)


def test_weights_saved_on_numpy_load_on_every_backend(tmp_path, backend):
    from minidl import backend as K

    path = tmp_path / "cnn.h5"
    K.set_backend("numpy")
    reference_model = cnn(seed=4)
    reference = reference_model.predict(IMAGES)
    reference_model.save(path)
    K.set_backend(backend)
    model = cnn(seed=9)
    model.load_weights(path)
    np.testing.assert_allclose(model.predict(IMAGES), reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(load_model(path).predict(IMAGES), reference, rtol=1e-4, atol=1e-5)
    model.save_weights(tmp_path / "back.h5")
    K.set_backend("numpy")
    reference_model.load_weights(tmp_path / "back.h5")
    np.testing.assert_allclose(reference_model.predict(IMAGES), reference, rtol=1e-6)
