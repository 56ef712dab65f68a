"""Saving graph models: Keras 2's Model config layout, whole-model files, weights by name.

The Keras 2 config below is written in the layout Keras 2.2.4's ``model.to_json()`` produces
(a nested ``Model`` called once counts as node 1 of that layer, as in Keras 2).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl.layers import Concatenate, Dense, Input, Layer
from minidl.models import Model, load_model, model_from_json

from .keras2_configs import conv_layer_config, kernel_layer_config
from .strategies import JSON_SCALARS

RNG = np.random.default_rng(9)
X = RNG.normal(size=(10, 4)).astype("float32")
Y_CLS = (X[:, 0] > 0).astype("float32")
Y_REG = X[:, 1:3] * 2

KERAS2_NESTED_MODEL = json.dumps(
    {
        "class_name": "Model",
        "config": {
            "name": "outer",
            "layers": [
                {
                    "name": "input_2",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, 4],
                        "dtype": "float32",
                        "sparse": False,
                        "name": "input_2",
                    },
                    "inbound_nodes": [],
                },
                {
                    "name": "inner",
                    "class_name": "Model",
                    "config": {
                        "name": "inner",
                        "layers": [
                            {
                                "name": "input_1",
                                "class_name": "InputLayer",
                                "config": {
                                    "batch_input_shape": [None, 4],
                                    "dtype": "float32",
                                    "sparse": False,
                                    "name": "input_1",
                                },
                                "inbound_nodes": [],
                            },
                            {
                                "name": "dense_1",
                                "class_name": "Dense",
                                "config": kernel_layer_config("dense_1", "relu", units=3),
                                "inbound_nodes": [[["input_1", 0, 0, {}]]],
                            },
                            {
                                "name": "concatenate_1",
                                "class_name": "Concatenate",
                                "config": {"name": "concatenate_1", "trainable": True, "axis": -1},
                                "inbound_nodes": [[["dense_1", 0, 0, {}], ["input_1", 0, 0, {}]]],
                            },
                        ],
                        "input_layers": [["input_1", 0, 0]],
                        "output_layers": [["concatenate_1", 0, 0]],
                    },
                    "inbound_nodes": [[["input_2", 0, 0, {}]]],
                },
                {
                    "name": "dense_2",
                    "class_name": "Dense",
                    "config": kernel_layer_config("dense_2", "sigmoid", units=1),
                    "inbound_nodes": [[["inner", 1, 0, {}]]],
                },
            ],
            "input_layers": [["input_2", 0, 0]],
            "output_layers": [["dense_2", 0, 0]],
        },
        "keras_version": "2.2.4",
        "backend": "tensorflow",
    }
)


def graph_model(seed: int = 0) -> Model:
    minidl.set_random_seed(seed)
    inputs = Input(shape=(4,), name="features")
    hidden = Dense(6, activation="relu", name="hidden")(inputs)
    merged = Concatenate(name="merge")([hidden, inputs])
    cls = Dense(1, activation="sigmoid", name="cls")(merged)
    reg = Dense(2, name="reg")(hidden)
    return Model(inputs, [cls, reg], name="graph")


def test_graph_config_has_keras_2_layout_and_round_trips():
    model = graph_model()
    spec = json.loads(model.to_json())
    assert spec["class_name"] == "Model"
    config = spec["config"]
    assert config["input_layers"] == [["features", 0, 0]]
    assert config["output_layers"] == [["cls", 0, 0], ["reg", 0, 0]]
    by_name = {layer["name"]: layer for layer in config["layers"]}
    assert by_name["features"]["inbound_nodes"] == []
    assert by_name["merge"]["inbound_nodes"] == [[["hidden", 0, 0, {}], ["features", 0, 0, {}]]]
    clone = model_from_json(model.to_json())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    clone.set_weights(model.get_weights())
    for a, b in zip(clone.predict(X), model.predict(X)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_keras_2_config_with_a_nested_model_loads():
    model = model_from_json(KERAS2_NESTED_MODEL)
    assert [layer.name for layer in model.layers] == ["input_2", "inner", "dense_2"]
    inner = model.get_layer("inner")
    assert [layer.name for layer in inner.layers] == ["input_1", "dense_1", "concatenate_1"]
    assert model.output_shape == (None, 1) and inner.output_shape == (None, 7)
    again = json.loads(model.to_json())["config"]
    assert again["layers"][2]["inbound_nodes"] == [[["inner", 1, 0, {}]]]
    assert model_from_json(model.to_json()).count_params() == model.count_params() == 15 + 8


def test_broken_graph_configs_fail_clearly():
    spec = json.loads(KERAS2_NESTED_MODEL)
    spec["config"]["layers"][2]["inbound_nodes"] = [[["inner", 5, 0, {}]]]
    with pytest.raises(ValueError, match="do not exist.*'dense_2'"):
        model_from_json(json.dumps(spec))
    spec["config"]["layers"][2]["inbound_nodes"] = [[["nowhere", 0, 0, {}]]]
    with pytest.raises(ValueError, match="does not define. Received: 'nowhere'"):
        model_from_json(json.dumps(spec))
    spec["config"]["layers"][2]["inbound_nodes"] = [[["inner", "1", 0, {}]]]
    with pytest.raises(ValueError, match="layer_name, node_index, tensor_index"):
        model_from_json(json.dumps(spec))
    spec["config"]["layers"][2]["inbound_nodes"] = [[["inner", 1, 0, {}]]]
    del spec["config"]["output_layers"]
    with pytest.raises(ValueError, match="'output_layers'"):
        model_from_json(json.dumps(spec))


def test_whole_model_file_keeps_several_outputs_and_their_compile_settings(tmp_path):
    model = graph_model()
    model.compile(
        "adam",
        loss={"cls": "binary_crossentropy", "reg": "mse"},
        loss_weights=[1.0, 0.25],
        metrics={"cls": ["accuracy"]},
    )
    model.fit(X, {"cls": Y_CLS, "reg": Y_REG}, epochs=2, verbose=0)
    path = tmp_path / "graph.h5"
    model.save(path)
    with h5py.File(path, "r") as handle:
        names = [n.decode() for n in handle["model_weights"].attrs["layer_names"]]
    assert names == [layer.name for layer in model.layers]
    again = load_model(path)
    assert (
        again.metrics_names
        == model.metrics_names
        == [
            "loss",
            "cls_loss",
            "reg_loss",
            "cls_accuracy",
        ]
    )
    np.testing.assert_allclose(
        again.evaluate(X, [Y_CLS, Y_REG], verbose=0), model.evaluate(X, [Y_CLS, Y_REG], verbose=0)
    )
    np.testing.assert_allclose(  # the optimizer state came back too: the next step matches
        again.train_on_batch(X, [Y_CLS, Y_REG]), model.train_on_batch(X, [Y_CLS, Y_REG])
    )


class Scale(Layer):
    """A custom layer, known only through custom_objects."""

    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs, training=False):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layers_load_through_custom_objects(tmp_path):
    inputs = Input(shape=(4,))
    model = Model(inputs, Scale(3.0, name="scale")(Dense(2, name="d")(inputs)))
    with pytest.raises(ValueError, match="Unknown layer class 'Scale'"):
        model_from_json(model.to_json())
    clone = model_from_json(model.to_json(), custom_objects={"Scale": Scale})
    assert clone.get_layer("scale").factor == 3.0
    path = tmp_path / "custom.h5"
    model.save(path)
    again = load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-6)


def test_graph_weights_move_across_backends_and_by_name(backend, tmp_path):
    from minidl import backend as K

    K.set_backend("numpy")
    source = graph_model(seed=1)
    expected = source.predict(X)
    path = tmp_path / "graph_weights.h5"
    source.save_weights(path)
    K.set_backend(backend)
    target = graph_model(seed=2)
    target.load_weights(path)
    for got, want in zip(target.predict(X), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    minidl.set_random_seed(3)
    inputs = Input(shape=(4,), name="other_input")
    partial = Model(
        inputs, Dense(2, name="reg")(Dense(6, activation="relu", name="hidden")(inputs))
    )
    partial.load_weights(path, by_name=True)
    np.testing.assert_allclose(partial.predict(X), expected[1], rtol=1e-5, atol=1e-6)


# ------------------------------------------------- a Keras 2 U-Net config, as Keras 2.2.4 writes
def _keras2_unet_config() -> dict:
    """The config Keras 2.2.4's ``to_json`` writes for a small U-Net (every default key kept)."""
    zeros = {"class_name": "Zeros", "config": {}}
    ones = {"class_name": "Ones", "config": {}}

    def conv(name, filters, k, act="relu", cls="Conv2D", strides=(1, 1), extra=None):
        c = conv_layer_config(
            name,
            act,
            filters,
            kernel_size=(k, k),
            strides=strides,
            padding="same",
            dilation_rate=(1, 1),
        )
        c.update(extra or {})
        return cls, c

    def bn(name):
        return "BatchNormalization", {
            "name": name,
            "trainable": True,
            "axis": -1,
            "momentum": 0.99,
            "epsilon": 0.001,
            "center": True,
            "scale": True,
            "beta_initializer": zeros,
            "gamma_initializer": ones,
            "moving_mean_initializer": zeros,
            "moving_variance_initializer": ones,
            "beta_regularizer": None,
            "gamma_regularizer": None,
            "beta_constraint": None,
            "gamma_constraint": None,
        }

    layers = []

    def add(cls_cfg, inbound):
        cls, cfg = cls_cfg
        layers.append(
            {
                "name": cfg["name"],
                "class_name": cls,
                "config": cfg,
                "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else [],
            }
        )

    add(
        (
            "InputLayer",
            {
                "batch_input_shape": [None, 16, 16, 1],
                "dtype": "float32",
                "sparse": False,
                "name": "input_1",
            },
        ),
        [],
    )
    add(conv("conv2d_1", 4, 3), ["input_1"])
    add(bn("batch_normalization_1"), ["conv2d_1"])
    add(
        (
            "MaxPooling2D",
            {
                "name": "max_pooling2d_1",
                "trainable": True,
                "pool_size": [2, 2],
                "padding": "valid",
                "strides": [2, 2],
                "data_format": "channels_last",
            },
        ),
        ["batch_normalization_1"],
    )
    add(conv("conv2d_2", 8, 3), ["max_pooling2d_1"])
    add(
        (
            "Dropout",
            {
                "name": "dropout_1",
                "trainable": True,
                "rate": 0.5,
                "noise_shape": None,
                "seed": None,
            },
        ),
        ["conv2d_2"],
    )
    add(
        conv(
            "conv2d_transpose_1",
            4,
            2,
            act="linear",
            cls="Conv2DTranspose",
            strides=(2, 2),
            extra={"output_padding": None},
        ),
        ["dropout_1"],
    )
    add(
        (
            "UpSampling2D",
            {
                "name": "up_sampling2d_1",
                "trainable": True,
                "size": [1, 1],
                "data_format": "channels_last",
                "interpolation": "nearest",
            },
        ),
        ["conv2d_transpose_1"],
    )
    add(
        ("Concatenate", {"name": "concatenate_1", "trainable": True, "axis": -1}),
        ["up_sampling2d_1", "batch_normalization_1"],
    )
    add(conv("conv2d_3", 1, 1, act="linear"), ["concatenate_1"])
    add(
        ("Activation", {"name": "activation_1", "trainable": True, "activation": "sigmoid"}),
        ["conv2d_3"],
    )
    config = {
        "name": "model_1",
        "layers": layers,
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [["activation_1", 0, 0]],
    }
    return {"class_name": "Model", "config": config, "keras_version": "2.2.4"}


def test_a_keras_2_unet_config_with_every_default_key_loads(backend):
    model = model_from_json(json.dumps(_keras2_unet_config()))
    assert model.output_shape == (None, 16, 16, 1)
    assert model.get_layer("concatenate_1").input_shape == [(None, 16, 16, 4), (None, 16, 16, 4)]
    assert model.count_params() == (40 + 16) + 296 + 132 + 9
    images = RNG.uniform(size=(2, 16, 16, 1)).astype("float32")
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(images), model.predict(images), rtol=1e-6)


def test_tf_keras_2_names_and_defaults_load_and_other_values_are_refused():
    spec = _keras2_unet_config()
    spec["class_name"] = "Functional"  # tf.keras 2.4+ names a graph model so
    for layer in spec["config"]["layers"]:
        if layer["class_name"] == "Conv2D":
            layer["config"]["groups"] = 1
        if layer["class_name"] == "InputLayer":
            layer["config"]["ragged"] = False
    assert model_from_json(json.dumps(spec)).output_shape == (None, 16, 16, 1)
    spec["config"]["layers"][1]["config"]["groups"] = 2
    with pytest.raises(TypeError, match=r"Conv2D: \{'groups': 2\}"):
        model_from_json(json.dumps(spec))


def _paths(obj, prefix=()):
    """Every path (tuple of keys and indices) inside a JSON-like object."""
    if prefix:
        yield prefix
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, value in items:
        yield from _paths(value, (*prefix, key))


JUNK = st.one_of(
    JSON_SCALARS,
    st.lists(st.integers(0, 3), max_size=3),
    st.just(["input_1", 0, 0]),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_model_configs_fail_only_with_clear_errors(data):
    spec = _keras2_unet_config()
    path = data.draw(st.sampled_from(list(_paths(spec))))
    parent = spec
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JUNK)
    try:
        model_from_json(json.dumps(spec))
    except (ValueError, TypeError) as err:
        assert str(err)  # a message, never a bare KeyError/IndexError/AttributeError
