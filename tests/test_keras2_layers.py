"""Keras 2 layer arguments: constraints, activity_regularizer, Dropout(noise_shape),
channels_first layers, and Keras 1 argument names (accepted with a warning)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl import constraints, layers, regularizers
from minidl.layers import (
    Conv2D,
    Convolution2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ZeroPadding2D,
)
from minidl.models import Model, Sequential

RNG = np.random.default_rng(5)


def norms(kernel, axis=0):
    return np.sqrt((kernel**2).sum(axis=axis))


@pytest.mark.parametrize(
    ("constraint", "check"),
    [
        (constraints.max_norm(0.3), lambda k: np.all(norms(k) <= 0.3 + 1e-5)),
        (constraints.unit_norm(), lambda k: np.allclose(norms(k), 1.0, atol=1e-5)),
        (constraints.non_neg(), lambda k: np.all(k >= 0)),
        (
            constraints.min_max_norm(0.5, 0.6),
            lambda k: np.all((norms(k) >= 0.5 - 1e-5) & (norms(k) <= 0.6 + 1e-5)),
        ),
    ],
)
def test_kernel_constraints_hold_after_training(backend, constraint, check):
    x = RNG.normal(size=(32, 6)).astype("float32")
    y = RNG.normal(size=(32, 4)).astype("float32")
    minidl.set_random_seed(0)
    model = Sequential([Dense(4, input_shape=(6,), kernel_constraint=constraint)])
    model.compile(minidl.optimizers.SGD(lr=0.5), "mse")
    kernel0 = model.get_weights()[0]
    assert not check(kernel0 * 10)  # the check can fail on an unconstrained kernel
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert check(model.get_weights()[0])


def test_constraint_is_applied_after_each_sgd_step(backend):
    x = RNG.normal(size=(8, 3)).astype("float32")
    y = RNG.normal(size=(8, 2)).astype("float32")
    minidl.set_random_seed(1)
    model = Sequential(
        [Dense(2, input_shape=(3,), bias_constraint="non_neg", kernel_constraint="max_norm")]
    )
    model.compile(minidl.optimizers.SGD(lr=0.4), "mse")
    kernel, bias = model.get_weights()
    model.train_on_batch(x, y)
    pred = x @ kernel + bias
    grad_out = 2 * (pred - y) / y.size
    kernel_new = kernel - 0.4 * x.T @ grad_out
    kernel_new *= np.clip(norms(kernel_new), 0, 2.0) / (norms(kernel_new) + 1e-7)
    bias_new = np.maximum(bias - 0.4 * grad_out.sum(axis=0), 0)
    got_kernel, got_bias = model.get_weights()
    np.testing.assert_allclose(got_kernel, kernel_new, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_bias, bias_new, rtol=1e-4, atol=1e-6)


def test_activity_regularizer_adds_the_keras_2_2_4_penalty(backend):
    x = RNG.normal(size=(10, 3)).astype("float32")
    y = RNG.normal(size=(10, 2)).astype("float32")
    minidl.set_random_seed(2)
    inputs = Input(shape=(3,))
    outputs = Dense(2, activity_regularizer=regularizers.l1(0.01))(inputs)
    model = Model(inputs, outputs)
    model.compile("sgd", "mse")
    kernel, bias = model.get_weights()
    pred = x @ kernel + bias
    want = ((pred - y) ** 2).mean() + 0.01 * np.abs(pred).sum()  # summed over the batch
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=10, verbose=0), want, rtol=1e-5)
    np.testing.assert_allclose(model.predict(x), pred, rtol=1e-5)  # predict is unaffected
    config = model.layers[1].get_config()
    assert config["activity_regularizer"]["config"]["l1"] == 0.01
    assert Dense.from_config(config).activity_regularizer.l1 == 0.01


def test_dropout_noise_shape_shares_the_mask(backend):
    inputs = Input(shape=(6, 40))
    shared = Dropout(0.5, noise_shape=(None, 1, 40), seed=3)(inputs)
    plain = Dropout(0.5, seed=3)(inputs)
    f = K.function([inputs, K.learning_phase()], [shared, plain])
    x = np.ones((4, 6, 40), "float32")
    out_shared, out_plain = f([x, 1])
    assert set(np.unique(out_shared)) == {0.0, 2.0}
    np.testing.assert_array_equal(out_shared, np.repeat(out_shared[:, :1], 6, axis=1))
    assert not np.array_equal(out_plain, np.repeat(out_plain[:, :1], 6, axis=1))
    np.testing.assert_array_equal(f([x, 0])[0], x)
    assert Dropout(0.5, noise_shape=(None, 1, 40)).get_config()["noise_shape"] == [None, 1, 40]
    with pytest.raises(ValueError, match="noise_shape"):
        Dropout(0.5, noise_shape=(None, 3, 40))(Input(shape=(6, 40)))


def channels_last_and_first(backend_name):
    minidl.set_random_seed(4)
    last = Sequential(
        [
            ZeroPadding2D(1, input_shape=(7, 6, 3)),
            Conv2D(4, 3, strides=2, activation="relu"),
            MaxPooling2D((2, 1), padding="same"),
            Flatten(),
            Dense(2),
        ]
    )
    first = Sequential(
        [
            ZeroPadding2D(1, input_shape=(3, 7, 6), data_format="channels_first"),
            Conv2D(4, 3, strides=2, activation="relu", data_format="channels_first"),
            MaxPooling2D((2, 1), padding="same", data_format="channels_first"),
            Flatten(data_format="channels_first"),
            Dense(2),
        ]
    )
    first.set_weights(last.get_weights())
    return last, first


def test_channels_first_layers_transpose_around_channels_last_code(backend):
    last, first = channels_last_and_first(backend)
    assert first.layers[1].output_shape == (None, 4, 4, 3)
    x = RNG.normal(size=(5, 7, 6, 3)).astype("float32")
    np.testing.assert_allclose(
        first.predict(x.transpose(0, 3, 1, 2)), last.predict(x), rtol=1e-5, atol=1e-6
    )
    images = RNG.normal(size=(5, 4, 5, 3)).astype("float32")
    pooled = Sequential(
        [GlobalAveragePooling2D(data_format="channels_first", input_shape=(3, 4, 5))]
    )
    np.testing.assert_allclose(
        pooled.predict(images.transpose(0, 3, 1, 2)), images.mean(axis=(1, 2)), rtol=1e-5
    )
    config = first.layers[1].get_config()
    assert config["data_format"] == "channels_first"
    assert Conv2D.from_config(config).data_format == "channels_first"


def test_global_image_data_format_is_the_default():
    K.set_image_data_format("channels_first")
    try:
        assert Conv2D(2, 3).data_format == "channels_first"
        assert Flatten().data_format == "channels_first"
        assert layers.UpSampling2D().data_format == "channels_first"
    finally:
        K.set_image_data_format("channels_last")
    assert Conv2D(2, 3).data_format == "channels_last"


def test_keras_1_argument_names_warn_and_convert():
    with pytest.warns(UserWarning, match=r"Dense\(units=5"):
        dense = Dense(output_dim=5, init="zeros", W_regularizer=regularizers.l2(0.1), bias=False)
    assert dense.units == 5 and not dense.use_bias and dense.kernel_regularizer.l2 == 0.1
    with pytest.warns(UserWarning, match=r"kernel_size=\(3, 3\)|\(32, \(3, 3\)\)"):
        conv = Convolution2D(32, 3, 3, border_mode="same", subsample=(2, 2), dim_ordering="th")
    assert conv.kernel_size == (3, 3) and conv.padding == "same" and conv.strides == (2, 2)
    assert conv.data_format == "channels_first"
    with pytest.warns(UserWarning):
        keyword_form = Conv2D(nb_filter=8, nb_row=2, nb_col=5)
    assert keyword_form.filters == 8 and keyword_form.kernel_size == (2, 5)
    with pytest.warns(UserWarning, match="padding"):
        pool = MaxPooling2D((2, 2), (1, 1), border_mode="same", dim_ordering="tf")
    assert pool.strides == (1, 1) and pool.padding == "same"
    assert MaxPooling2D((3, 3), (2, 2)).strides == (2, 2)  # positional Keras 2 form
    with pytest.warns(UserWarning, match="rate"):
        assert Dropout(p=0.25).rate == 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Conv2D(4, 3, strides=2)  # the Keras 2 form does not warn
    with pytest.raises(ValueError, match="border_mode='full'"):
        with pytest.warns(UserWarning):
            Convolution2D(4, 3, 3, border_mode="full")
    with pytest.raises(TypeError, match="both `output_dim`"):
        Dense(3, output_dim=4, units=4)


def test_keras_2_config_with_constraint_and_regularizer_keys():
    config = json.loads(
        """{"class_name": "Dense", "config": {"name": "d", "trainable": true, "units": 3,
        "activation": "relu", "use_bias": true,
        "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 1.0,
            "mode": "fan_avg", "distribution": "uniform", "seed": null}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}},
        "bias_regularizer": null, "activity_regularizer": null,
        "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}},
        "bias_constraint": null}}"""
    )
    layer = layers.deserialize(config)
    assert isinstance(layer.kernel_constraint, constraints.MaxNorm)
    assert layer.kernel_constraint.max_value == 2.0 and layer.bias_constraint is None
    again = layers.serialize(layer)["config"]
    assert again["kernel_constraint"] == {
        "class_name": "MaxNorm",
        "config": {"max_value": 2.0, "axis": 0},
    }
    assert again["activity_regularizer"] is None


def test_initial_weights_argument(backend):
    kernel = RNG.normal(size=(3, 2)).astype("float32")
    bias = np.array([0.5, -1.0], "float32")
    model = Sequential([Dense(2, input_shape=(3,), weights=[kernel, bias])])
    x = RNG.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x), x @ kernel + bias, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        Sequential([Dense(2, input_shape=(3,), weights=[kernel.T, bias])])


def test_more_channels_first_layers(backend):
    from minidl.layers import Conv2DTranspose, Cropping2D, SpatialDropout2D, UpSampling2D

    def stack(data_format, shape):
        minidl.set_random_seed(6)
        return Sequential(
            [
                Conv2DTranspose(4, 3, strides=2, data_format=data_format, input_shape=shape),
                UpSampling2D((2, 1), interpolation="bilinear", data_format=data_format),
                Cropping2D(((1, 2), (0, 1)), data_format=data_format),
                SpatialDropout2D(0.5, data_format=data_format),
            ]
        )

    last = stack("channels_last", (5, 4, 3))
    first = stack("channels_first", (3, 5, 4))
    first.set_weights(last.get_weights())
    assert first.output_shape == (None, 4, 19, 8) and last.output_shape == (None, 19, 8, 4)
    x = RNG.normal(size=(2, 5, 4, 3)).astype("float32")
    np.testing.assert_allclose(
        first.predict(x.transpose(0, 3, 1, 2)),
        last.predict(x).transpose(0, 3, 1, 2),
        rtol=1e-5,
        atol=1e-6,
    )
    inputs = Input(shape=(4, 6, 5))
    dropped = SpatialDropout2D(0.5, data_format="channels_first", seed=1)(inputs)
    out = K.function([inputs, K.learning_phase()], [dropped])([np.ones((8, 4, 6, 5)), 1])[0]
    per_channel = out.reshape(8, 4, -1)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))  # whole maps dropped
    assert 0 < (per_channel[:, :, 0] == 0).mean() < 1


def test_conv2d_transpose_applies_its_constraints(backend):
    x = RNG.normal(size=(4, 3, 3, 2)).astype("float32")
    y = RNG.normal(size=(4, 6, 6, 3)).astype("float32")
    from minidl.layers import Conv2DTranspose

    minidl.set_random_seed(2)
    layer = Conv2DTranspose(
        3,
        2,
        strides=2,
        input_shape=(3, 3, 2),
        kernel_constraint="non_neg",
        bias_constraint="non_neg",
    )
    model = Sequential([layer])
    model.compile(minidl.optimizers.SGD(lr=0.5), "mse")
    assert (model.get_weights()[0] < 0).any()  # the check can fail on an unconstrained kernel
    model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    kernel, bias = model.get_weights()
    assert (kernel >= 0).all() and (bias >= 0).all()
