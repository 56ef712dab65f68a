"""Lambda layers: they build, train and save on every backend, and loading never runs stored code.

A saved ``Lambda`` records its function's *name*; ``from_config``/``load_model`` take the
function from ``custom_objects`` and fail with a ``ValueError`` naming the layer otherwise,
including for Keras 2 configs that hold marshalled bytecode (which is never unmarshalled).
"""

from __future__ import annotations

import base64
import json
import marshal

import numpy as np
import pytest

from minidl import backend as K
from minidl import layers
from minidl.layers import Dense, Lambda
from minidl.models import Sequential, model_from_json

from .lambda_saving import save_and_reload_lambda_model
from .layer_checks import check_layer

RAN_STORED_CODE: list[str] = []


def scale_and_shift(x, scale=2.0, shift=0.5):
    return x * scale + shift


def squared_norm_shape(input_shape):
    return (input_shape[0], 1)


def squared_norm(x):
    return K.sum(K.square(x), axis=-1, keepdims=True)


def test_check_layer_with_arguments():
    layer = Lambda(scale_and_shift, arguments={"scale": 3.0, "shift": -1.0})
    result = check_layer(
        layer, (2, 3, 4), expected_weights=0, custom_objects={"scale_and_shift": scale_and_shift}
    )
    np.testing.assert_allclose(result.output, result.x * 3.0 - 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "output_shape, expected",
    [((1,), (None, 1)), (squared_norm_shape, (None, 1)), (None, (None, 1))],
)
def test_output_shape_given_as_tuple_function_or_inferred(output_shape, expected):
    layer = Lambda(squared_norm, output_shape=output_shape)
    assert layer.compute_output_shape((None, 5)) == expected
    objects = {"squared_norm": squared_norm, "squared_norm_shape": squared_norm_shape}
    result = check_layer(layer, (3, 5), expected_weights=0, custom_objects=objects)
    np.testing.assert_allclose(result.output, (result.x**2).sum(-1, keepdims=True), rtol=1e-5)


def test_inference_needs_known_sizes_else_assumes_the_input_shape():
    assert Lambda(squared_norm).compute_output_shape((None, None)) == (None, None)


def test_config_records_names_never_code():
    config = Lambda(scale_and_shift, output_shape=squared_norm_shape, name="f").get_config()
    assert config["function"] == "scale_and_shift" and config["function_type"] == "function"
    assert config["output_shape"] == "squared_norm_shape"
    text = json.dumps(config)
    assert "co_code" not in text and scale_and_shift.__code__.co_code.hex() not in text
    anonymous = Lambda(lambda x: x + 1.0, name="plus_one").get_config()
    assert anonymous["function"] == "<lambda>" and anonymous["function_type"] == "lambda"


def test_from_config_without_the_function_names_the_layer_and_custom_objects():
    config = Lambda(scale_and_shift, name="affine").get_config()
    with pytest.raises(ValueError, match=r"'affine' \(Lambda\).*custom_objects") as error:
        Lambda.from_config(config)
    assert "'scale_and_shift'" in str(error.value) and "Received: " in str(error.value)
    with pytest.raises(ValueError, match=r"'affine' \(Lambda\)"):
        Lambda.from_config(config, custom_objects={"something_else": squared_norm})
    rebuilt = Lambda.from_config(config, custom_objects={"scale_and_shift": scale_and_shift})
    assert rebuilt.function is scale_and_shift and rebuilt.name == "affine"


def test_an_anonymous_lambda_comes_back_under_the_layer_name():
    config = Lambda(lambda x: x + 1.0, name="plus_one").get_config()
    with pytest.raises(ValueError, match=r"'plus_one' \(Lambda\).*\{'plus_one': "):
        Lambda.from_config(config)
    rebuilt = Lambda.from_config(config, custom_objects={"plus_one": scale_and_shift})
    assert rebuilt.function is scale_and_shift


def _leaky_function(x):
    RAN_STORED_CODE.append("ran")  # would record that bytecode from a file was executed
    return x


def test_keras2_bytecode_config_is_refused_without_running_it():
    code = base64.b64encode(marshal.dumps(_leaky_function.__code__)).decode("ascii")
    spec = {
        "class_name": "Lambda",
        "config": {
            "name": "from_keras2",
            "trainable": True,
            "function": [code, None, None],
            "function_type": "lambda",
            "output_shape": None,
            "output_shape_type": "raw",
            "arguments": {},
        },
    }
    model_json = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [spec]}})
    with pytest.raises(ValueError, match=r"'from_keras2' \(Lambda\).*bytecode.*custom_objects"):
        model_from_json(model_json)
    assert RAN_STORED_CODE == []
    with pytest.raises(ValueError, match=r"'from_keras2' \(Lambda\)"):
        layers.deserialize(spec)
    model = model_from_json(model_json, custom_objects={"from_keras2": scale_and_shift})
    assert model.layers[0].function is scale_and_shift
    assert RAN_STORED_CODE == []


def _lambda_model() -> Sequential:
    model = Sequential(
        [
            Dense(4, input_shape=(3,), kernel_initializer="ones", name="dense_in"),
            Lambda(scale_and_shift, arguments={"scale": 0.5}, name="affine"),
            Dense(1, kernel_initializer="ones", name="dense_out"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_model_with_lambda_trains_saves_and_loads(backend, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) * 0.3).astype("float32")
    model = _lambda_model()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    predictions = model.predict(x)
    loaded = save_and_reload_lambda_model(
        model, str(tmp_path / "lambda.h5"), "affine", {"scale_and_shift": scale_and_shift}
    )
    np.testing.assert_allclose(loaded.predict(x), predictions, rtol=1e-6)
    assert loaded.get_layer("affine").arguments == {"scale": 0.5}


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`function` of Lambda.*Received: function=3"):
        Lambda(3)
    with pytest.raises(ValueError, match=r"`output_shape` of Lambda"):
        Lambda(squared_norm, output_shape="wide")
    with pytest.raises(ValueError, match=r"`arguments` of Lambda"):
        Lambda(squared_norm, arguments=[1])
