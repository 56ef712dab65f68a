"""Keras 2 backend functions: K.backend, clear_session, image data format, learning phase."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minidl
from minidl import backend as K


@pytest.fixture(autouse=True)
def _restore_image_data_format():
    previous = K.image_data_format()
    yield
    K.set_image_data_format(previous)


def test_backend_name(backend):
    assert K.backend() == backend == K.name()


def test_image_data_format_and_dim_ordering():
    assert K.image_data_format() == "channels_last" and K.image_dim_ordering() == "tf"
    K.set_image_data_format("channels_first")
    assert K.image_data_format() == "channels_first" and K.image_dim_ordering() == "th"
    K.set_image_dim_ordering("tf")
    assert K.image_data_format() == "channels_last"
    with pytest.raises(ValueError, match=r"channels_last.*Received: 'channels_middle'"):
        K.set_image_data_format("channels_middle")
    with pytest.raises(ValueError, match="'tf' or 'th'"):
        K.set_image_dim_ordering("default")


def test_image_data_format_from_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "minidl.json").write_text(json.dumps({"image_data_format": "channels_first"}))
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    monkeypatch.setattr(K, "_image_data_format", None)
    assert K.image_data_format() == "channels_first"


def test_clear_session_restarts_layer_names():
    from minidl.layers import Dense

    Dense(2)
    K.clear_session()
    first = Dense(2).name
    K.clear_session()
    assert Dense(3).name == first == "dense"


def test_set_learning_phase():
    K.set_learning_phase(0)  # inference is already the default everywhere
    with pytest.raises(ValueError, match="no global learning phase"):
        K.set_learning_phase(1)
    with pytest.raises(ValueError, match="0 or 1"):
        K.set_learning_phase(2)


def test_contract_form_of_function_still_works(backend):
    step = K.function(lambda x: ([x * 2.0], []), [((None, 2), "float32")])
    np.testing.assert_allclose(step(np.ones((1, 2), "float32"))[0], [[2.0, 2.0]])


def test_learning_phase_switches_dropout_and_batch_norm(backend):
    from minidl.layers import BatchNormalization, Dense, Dropout, Input

    minidl.set_random_seed(1)
    inputs = Input(shape=(50,))
    hidden = Dense(50, kernel_initializer="ones", use_bias=False)(inputs)
    dropped = Dropout(0.5)(hidden)
    normed = BatchNormalization()(inputs)
    f = K.function([inputs, K.learning_phase()], [dropped, normed])
    x = np.random.default_rng(0).normal(loc=3.0, size=(64, 50)).astype("float32")
    test_out, test_norm = f([x, 0])
    train_out, train_norm = f([x, 1])
    np.testing.assert_allclose(test_out, x.sum(axis=1, keepdims=True) * np.ones((1, 50)), rtol=1e-4)
    zeros = train_out == 0
    assert 0.3 < zeros.mean() < 0.7  # dropout is active in phase 1
    np.testing.assert_allclose(train_out[~zeros], 2 * test_out[~zeros], rtol=1e-4)
    # phase 0 normalises with the moving statistics (0 and 1 initially): nearly the input;
    # phase 1 with the batch's statistics: mean about 0 per feature
    np.testing.assert_allclose(test_norm, x / np.sqrt(1 + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(train_norm.mean(axis=0), 0, atol=1e-4)
    again, _ = f([x, 0])
    np.testing.assert_allclose(again, test_out)  # phase 1 left no state behind
    g = K.function([inputs], [normed])  # no learning phase input: inference
    np.testing.assert_allclose(g([x])[0], test_norm, rtol=1e-6)
    with pytest.raises(ValueError, match="0 \\(test\\) or 1 \\(train\\)"):
        f([x, 3])
    with pytest.raises(ValueError, match="expects 2 input values"):
        f([x])
