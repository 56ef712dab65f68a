"""Files written by Keras: Keras 2 configs, Keras 3 ``.keras``/``.h5``/``.weights.h5``, YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import minidl
from minidl import constraints, keras3_format
from minidl.layers import BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPooling2D
from minidl.models import Model, Sequential, load_model, model_from_json, model_from_yaml

RNG = np.random.default_rng(11)

KERAS2_JSON = """{"class_name": "Sequential", "keras_version": "2.2.4", "backend": "tensorflow",
 "config": {"name": "sequential_1", "layers": [
  {"class_name": "Dense", "config": {"name": "dense_1", "trainable": true,
   "batch_input_shape": [null, 4], "dtype": "float32", "units": 3, "activation": "relu",
   "use_bias": true, "kernel_initializer": {"class_name": "VarianceScaling", "config":
   {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": null}},
   "bias_initializer": {"class_name": "Zeros", "config": {}},
   "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}},
   "bias_regularizer": null, "activity_regularizer": {"class_name": "L1L2",
   "config": {"l1": 0.001, "l2": 0.0}},
   "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}},
   "bias_constraint": {"class_name": "NonNeg", "config": {}}}},
  {"class_name": "Dense", "config": {"name": "dense_2", "trainable": true, "units": 1,
   "activation": "sigmoid", "use_bias": true, "kernel_initializer": {"class_name":
   "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform",
   "seed": null}}, "bias_initializer": {"class_name": "Zeros", "config": {}},
   "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
   "kernel_constraint": null, "bias_constraint": null}}]}}"""


def test_keras2_config_with_constraint_and_regularizer_keys():
    model = model_from_json(KERAS2_JSON)
    first = model.layers[0]
    assert isinstance(first.kernel_constraint, constraints.MaxNorm)
    assert isinstance(first.bias_constraint, constraints.NonNeg)
    assert first.kernel_regularizer.l2 == 0.01 and first.activity_regularizer.l1 == 0.001
    assert model.output_shape == (None, 1)


def small_cnn():
    minidl.set_random_seed(3)
    return Sequential(
        [
            Conv2D(3, 3, activation="relu", input_shape=(6, 6, 2)),
            BatchNormalization(),
            MaxPooling2D(),
            Flatten(),
            Dense(2, activation="softmax", kernel_constraint=constraints.max_norm(2.0)),
        ]
    )


def small_graph():
    minidl.set_random_seed(4)
    inputs = Input(shape=(4,), name="x")
    hidden = Dense(3, activation="tanh", name="h")(inputs)
    return Model(inputs, Dense(1, name="o")(hidden))


def keras3_seq_layers():
    """minidl's layers of the Keras 3 ``seq`` model below (without its constraint/penalty)."""
    return Sequential(
        [
            Conv2D(3, 3, activation="relu", input_shape=(6, 6, 2)),
            BatchNormalization(),
            MaxPooling2D(),
            Flatten(),
            minidl.layers.Dropout(0.2),
            Dense(2, activation="softmax"),
        ]
    )


def test_yaml_round_trip_uses_a_safe_loader():
    model = small_cnn()
    text = model.to_yaml()
    again = model_from_yaml(text)
    assert [type(la).__name__ for la in again.layers] == [type(la).__name__ for la in model.layers]
    assert again.layers[-1].kernel_constraint.max_value == 2.0
    with pytest.raises(ValueError, match="model_from_yaml"):
        model_from_yaml("!!python/object/apply:os.system ['echo unsafe']")
    with pytest.raises(ValueError, match="mapping"):
        model_from_yaml("- just\n- a list\n")


@pytest.mark.parametrize("build", [small_cnn, small_graph])
def test_keras_zip_round_trip(backend, build, tmp_path):
    model = build()
    x = RNG.normal(size=(3, *model.input_shape[1:])).astype("float32")
    path = tmp_path / "m.keras"
    model.save(str(path))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
    assert config["class_name"] in ("Sequential", "Functional") and "module" in config
    again = load_model(str(path))
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6, atol=1e-7)
    weights = tmp_path / "m.weights.h5"
    model.save_weights(str(weights))
    fresh = build()
    fresh.set_weights([w * 0 for w in fresh.get_weights()])
    fresh.load_weights(str(weights))
    np.testing.assert_allclose(fresh.predict(x), model.predict(x), rtol=1e-6, atol=1e-7)


def test_bad_keras_files(tmp_path):
    empty = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(ValueError, match=r"lacks \['config.json', 'model.weights.h5'\]"):
        load_model(str(empty))
    spec = {
        "module": "keras.layers",
        "class_name": "Conv2D",
        "config": {"name": "c", "filters": 2, "kernel_size": [3, 3], "groups": 2},
        "registered_name": None,
    }
    with pytest.raises(ValueError, match=r"`groups` of layer 'c' \(Conv2D\).*groups=2"):
        keras3_format.from_keras3(spec)
    spec["config"]["groups"] = 1  # Keras 3's default: dropped
    assert "groups" not in keras3_format.from_keras3(spec)["config"]
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
    with pytest.raises(ValueError, match="mixed-precision"):
        keras3_format.from_keras3({"class_name": "Dense", "config": {"units": 1, "dtype": policy}})


KERAS3_FILES = os.path.join(os.path.dirname(__file__), "data", "keras3")


def test_keras3_reference_files(backend):
    """Files Keras 3 wrote (tests/data/keras3) load with Keras 3's predictions."""
    folder = KERAS3_FILES
    x = np.load(os.path.join(folder, "x.npy"))
    seq_want = np.load(os.path.join(folder, "seq_pred.npy"))
    graph_want = np.load(os.path.join(folder, "graph_pred.npy"))
    for suffix in (".keras", ".h5"):
        seq = load_model(os.path.join(folder, f"seq{suffix}"), compile=suffix == ".keras")
        np.testing.assert_allclose(seq.predict(x), seq_want, rtol=1e-4, atol=1e-5)
        assert isinstance(seq.layers[0].kernel_constraint, constraints.MaxNorm)
        assert seq.layers[-1].kernel_regularizer.l2 == pytest.approx(0.01)
        graph = load_model(os.path.join(folder, f"graph{suffix}"), compile=False)
        np.testing.assert_allclose(
            graph.predict(np.ones((2, 4), "float32")), graph_want, rtol=1e-4, atol=1e-5
        )
    plain = keras3_seq_layers()
    plain.load_weights(os.path.join(folder, "seq.weights.h5"))
    np.testing.assert_allclose(plain.predict(x), seq_want, rtol=1e-4, atol=1e-5)
    graph = small_graph()
    graph.load_weights(os.path.join(folder, "graph.weights.h5"))
    np.testing.assert_allclose(
        graph.predict(np.ones((2, 4), "float32")), graph_want, rtol=1e-4, atol=1e-5
    )


KERAS3_WRITE = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras, numpy as np
out = sys.argv[1]
keras.utils.set_random_seed(0)
seq = keras.Sequential([
    keras.Input(shape=(6, 6, 2)),
    keras.layers.Conv2D(3, 3, activation="relu",
                        kernel_constraint=keras.constraints.MaxNorm(2.0)),
    keras.layers.BatchNormalization(),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(2, activation="softmax", kernel_regularizer=keras.regularizers.L2(0.01)),
])
seq.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32")
seq.fit(x, np.eye(2)[[0, 1, 0, 1]], epochs=2, verbose=0)  # moving statistics move too
inputs = keras.Input(shape=(4,), name="x")
hidden = keras.layers.Dense(3, activation="tanh", name="h")(inputs)
graph = keras.Model(inputs, keras.layers.Dense(1, name="o")(hidden))
for name, model in (("seq", seq), ("graph", graph)):
    model.save(os.path.join(out, name + ".keras"))
    model.save(os.path.join(out, name + ".h5"))
    model.save_weights(os.path.join(out, name + ".weights.h5"))
np.save(os.path.join(out, "seq_pred.npy"), seq.predict(x, verbose=0))
np.save(os.path.join(out, "graph_pred.npy"), graph.predict(np.ones((2, 4)), verbose=0))
np.save(os.path.join(out, "x.npy"), x)
"""

KERAS3_READ = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras, numpy as np
out = sys.argv[1]
x = np.load(os.path.join(out, "x.npy"))
for name, data in (("mine_seq", x), ("mine_graph", np.ones((2, 4), "float32"))):
    model = keras.models.load_model(os.path.join(out, name + ".keras"))
    want = np.load(os.path.join(out, name + "_pred.npy"))
    assert np.allclose(model.predict(data, verbose=0), want, atol=1e-5), name
    model.load_weights(os.path.join(out, name + ".weights.h5"))
    assert np.allclose(model.predict(data, verbose=0), want, atol=1e-5), name
print("keras 3 loaded minidl's files")
"""


def run_keras3(script: str, folder: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), folder],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow  # two Keras 3 + TensorFlow start-ups: about a minute
def test_keras3_files_both_ways(tmp_path):
    """Keras 3 writes .keras/.h5/.weights.h5 that minidl loads, and loads minidl's files."""
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    folder = str(tmp_path)
    run_keras3(KERAS3_WRITE, folder)
    x = np.load(tmp_path / "x.npy")
    seq_want, graph_want = np.load(tmp_path / "seq_pred.npy"), np.load(tmp_path / "graph_pred.npy")
    for suffix in (".keras", ".h5"):
        seq = load_model(str(tmp_path / f"seq{suffix}"))
        np.testing.assert_allclose(seq.predict(x), seq_want, rtol=1e-4, atol=1e-5)
        assert isinstance(seq.layers[0].kernel_constraint, constraints.MaxNorm)
        graph = load_model(str(tmp_path / f"graph{suffix}"), compile=False)
        np.testing.assert_allclose(
            graph.predict(np.ones((2, 4), "float32")), graph_want, rtol=1e-4, atol=1e-5
        )
    plain = keras3_seq_layers()
    plain.load_weights(str(tmp_path / "seq.weights.h5"))
    np.testing.assert_allclose(plain.predict(x), seq_want, rtol=1e-4, atol=1e-5)
    graph = small_graph()
    for name, model, data in (("mine_seq", plain, x), ("mine_graph", graph, np.ones((2, 4)))):
        model.save(str(tmp_path / f"{name}.keras"))
        model.save_weights(str(tmp_path / f"{name}.weights.h5"))
        np.save(tmp_path / f"{name}_pred.npy", model.predict(data.astype("float32")))
    assert "keras 3 loaded" in run_keras3(KERAS3_READ, folder)
