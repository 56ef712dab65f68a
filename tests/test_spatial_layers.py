"""Conv2DTranspose, Conv2D(dilation_rate), UpSampling2D and Cropping2D on every backend.

Each goes through ``check_layer`` (shape, weight count, config round trip, one SGD step, the
same numbers on every backend after ``set_weights``); outputs are compared with the naive loop
references of ``tests/naive_spatial.py`` (never with a backend).
"""

from __future__ import annotations

import numpy as np
import pytest

from minidl import layers

from . import naive, naive_spatial
from .keras2_configs import conv_layer_config
from .layer_checks import check_layer

TOL = {"rtol": 1e-4, "atol": 1e-5}


# ------------------------------------------------------------------- Conv2DTranspose


@pytest.mark.parametrize(
    "kwargs, input_shape, expected",
    [
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, (2, 4, 5, 3), (2, 8, 10, 2)),
        ({"kernel_size": 3, "strides": 2, "padding": "valid"}, (2, 4, 5, 3), (2, 9, 11, 2)),
        ({"kernel_size": 2, "strides": 2}, (2, 3, 4, 3), (2, 6, 8, 2)),
        (
            {"kernel_size": (3, 2), "strides": (2, 1), "output_padding": (1, 0)},
            (1, 3, 4, 2),
            (1, 8, 5, 2),
        ),
        (
            {"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": (1, 0)},
            (1, 3, 3, 2),
            (1, 6, 5, 2),
        ),
        ({"kernel_size": 1, "strides": 3, "use_bias": False}, (1, 2, 3, 2), (1, 6, 9, 2)),
        ({"kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (2, 4, 5, 3), (2, 4, 5, 2)),
        ({"kernel_size": (3, 2), "dilation_rate": (2, 3)}, (1, 3, 4, 2), (1, 7, 7, 2)),
    ],
)
def test_conv2d_transpose(kwargs, input_shape, expected):
    layer = layers.Conv2DTranspose(2, **kwargs)
    assert layer.compute_output_shape(input_shape) == expected
    weights = 2 if kwargs.get("use_bias", True) else 1
    result = check_layer(layer, input_shape, expected_weights=weights)
    kernel = result.weights[0]
    kh, kw = layer.kernel_size
    assert kernel.shape == (kh, kw, 2, input_shape[-1])  # Keras 2: (kh, kw, filters, in)
    (dh, dw), (kh, kw) = layer.dilation_rate, kernel.shape[:2]
    spread = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1, *kernel.shape[2:]), kernel.dtype)
    spread[::dh, ::dw] = kernel  # a dilated kernel: zeros between the taps
    want = naive_spatial.conv2d_transpose(
        result.x, spread, expected[1:3], layer.strides, layer.padding
    )
    if weights == 2:
        want = want + result.weights[1]
    np.testing.assert_allclose(result.output, want, **TOL)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_padding": 2, "strides": 2}, r"output_padding.*smaller than its stride"),
        ({"dilation_rate": 2, "strides": 2}, r"dilation_rate.*unit strides"),
        ({"padding": "full"}, r"padding"),
        ({"data_format": "channels_middle"}, r"data_format"),
    ],
)
def test_conv2d_transpose_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        layers.Conv2DTranspose(4, 3, name="up", **kwargs)
    assert "'up'" in str(error.value) and "Received: " in str(error.value)


def test_conv2d_transpose_inconsistent_output_padding_is_named():
    # Keras 2's rule gives 2 * 4 - 2 = 6 rows for an even kernel with "same" and
    # output_padding 0, but a "same" convolution of 6 rows gives 3, not 4
    layer = layers.Conv2DTranspose(1, 2, strides=2, padding="same", output_padding=0, name="up")
    with pytest.raises(ValueError, match=r"'up' \(Conv2DTranspose\).*Received: input_shape"):
        layer.compute_output_shape((None, 4, 4, 1))


# ------------------------------------------------------------ Conv2D(dilation_rate)


@pytest.mark.parametrize(
    "kwargs, input_shape, expected",
    [
        ({"kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (2, 7, 6, 3), (2, 7, 6, 2)),
        ({"kernel_size": (3, 2), "dilation_rate": (2, 3)}, (2, 7, 6, 3), (2, 3, 3, 2)),
    ],
)
def test_dilated_conv2d(kwargs, input_shape, expected):
    layer = layers.Conv2D(2, **kwargs)
    assert layer.compute_output_shape(input_shape) == expected
    result = check_layer(layer, input_shape, expected_weights=2)
    want = naive.conv2d(result.x, result.weights[0], (1, 1), layer.padding, layer.dilation_rate)
    np.testing.assert_allclose(result.output, want + result.weights[1], **TOL)
    assert layer.get_config()["dilation_rate"] == list(layer.dilation_rate)


def test_dilation_with_strides_is_refused():
    with pytest.raises(ValueError, match=r"dilation_rate.*Received: dilation_rate=2"):
        layers.Conv2D(2, 3, strides=2, dilation_rate=2)


# ------------------------------------------------------------------- UpSampling2D


def test_upsampling_nearest():
    layer = layers.UpSampling2D((2, 3))
    result = check_layer(layer, (2, 3, 4, 2), expected_weights=0)
    want = result.x.repeat(2, axis=1).repeat(3, axis=2)
    np.testing.assert_array_equal(result.output, want)


@pytest.mark.parametrize("size, input_shape", [((2, 2), (2, 3, 4, 2)), ((3, 1), (1, 1, 2, 3))])
def test_upsampling_bilinear(size, input_shape):
    layer = layers.UpSampling2D(size, interpolation="bilinear")
    assert layer.get_config()["interpolation"] == "bilinear"
    result = check_layer(layer, input_shape, expected_weights=0)
    np.testing.assert_allclose(
        result.output, naive_spatial.upsample_bilinear(result.x, size), **TOL
    )


def test_upsampling_bad_interpolation():
    with pytest.raises(ValueError, match=r"interpolation.*Received: interpolation='bicubic'"):
        layers.UpSampling2D(interpolation="bicubic")


# --------------------------------------------------------------------- Cropping2D


@pytest.mark.parametrize(
    "cropping, rows, cols",
    [(1, slice(1, -1), slice(1, -1)), ((1, 0), slice(1, -1), slice(0, None))]
    + [(((0, 2), (1, 3)), slice(0, -2), slice(1, -3))],
)
def test_cropping2d(cropping, rows, cols):
    layer = layers.Cropping2D(cropping)
    result = check_layer(layer, (2, 5, 6, 3), expected_weights=0)
    np.testing.assert_array_equal(result.output, result.x[:, rows, cols])


def test_cropping_too_much_is_named():
    layer = layers.Cropping2D(((2, 2), (0, 0)), name="crop")
    with pytest.raises(ValueError, match=r"'crop' \(Cropping2D\).*Received: input_shape"):
        layer.compute_output_shape((None, 4, 4, 1))


# ---------------------------------------------------------------- SpatialDropout2D


def test_spatial_dropout_is_the_identity_at_inference():
    layer = layers.SpatialDropout2D(0.4, seed=3)
    result = check_layer(layer, (2, 3, 4, 5), expected_weights=0, step_training=False)
    np.testing.assert_array_equal(result.output, result.x)


def test_spatial_dropout_drops_whole_channels_while_training(backend):
    from minidl import backend as K

    rate, shape = 0.5, (8, 3, 4, 32)
    layer = layers.SpatialDropout2D(rate, seed=7)
    layer.build_for((None, *shape[1:]))
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=shape).astype("float32")
    step = K.function(lambda t: ([layer(t, training=True)], []), [((None, *shape[1:]), "float32")])
    first, second = step(x)[0], step(x)[0]
    for out in (first, second):
        scale = out / x  # 0 or 1 / (1 - rate) per (sample, channel), the same at every pixel
        np.testing.assert_allclose(scale, scale[:, :1, :1, :] * np.ones_like(scale), rtol=1e-6)
        assert set(np.round(np.unique(scale), 5)) == {0.0, 2.0}
        dropped = float(np.mean(scale[:, 0, 0, :] == 0))
        assert 0.3 < dropped < 0.7, dropped  # 256 channel draws at rate 0.5
    assert not np.array_equal(first, second)  # a fresh mask on every call


def test_spatial_dropout_needs_images():
    with pytest.raises(ValueError, match=r"'sd' \(SpatialDropout2D\).*4-D.*Received"):
        layers.SpatialDropout2D(0.5, name="sd").compute_output_shape((None, 3, 4))


# --------------------------------------------------------------- Keras 2 configs

KERAS2_CONFIGS = {  # as Keras 2.2.4's get_config writes them
    "Conv2D": conv_layer_config(
        "c", "relu", 3, kernel_size=(3, 3), strides=(1, 1), padding="same", dilation_rate=(2, 2)
    ),
    "Conv2DTranspose": conv_layer_config(
        "t", "linear", 3, kernel_size=(2, 2), strides=(2, 2), padding="valid", output_padding=None
    ),
    "UpSampling2D": {
        "name": "u",
        "trainable": True,
        "size": [2, 2],
        "data_format": "channels_last",
        "interpolation": "bilinear",
    },
    "Cropping2D": {
        "name": "k",
        "trainable": True,
        "cropping": [[1, 1], [0, 2]],
        "data_format": "channels_last",
    },
    "SpatialDropout2D": {
        "name": "s",
        "trainable": True,
        "rate": 0.2,
        "noise_shape": None,
        "seed": None,
    },
    "Concatenate": {"name": "j", "trainable": True, "axis": -1},
    "Multiply": {"name": "m", "trainable": True},
}


@pytest.mark.parametrize("class_name", list(KERAS2_CONFIGS))
def test_keras2_configs_load(class_name):
    from minidl.engine.serialization import deserialize_layer

    spec = {"class_name": class_name, "config": KERAS2_CONFIGS[class_name]}
    layer = deserialize_layer(spec)
    assert type(layer).__name__ == class_name and layer.name == spec["config"]["name"]
    for key in ("filters", "axis", "rate", "interpolation"):
        if key in spec["config"]:
            assert getattr(layer, key) == spec["config"][key]
    if class_name == "Conv2D":
        assert layer.dilation_rate == (2, 2)
    if class_name == "Cropping2D":
        assert layer.cropping == ((1, 1), (0, 2))
