"""Layers: one ``check_layer`` per layer (every backend), values vs NumPy, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import minidl
from minidl import backend as K
from minidl import initializers, regularizers
from minidl import layers as L

from .conftest import installed_backends
from .layer_checks import check_layer
from .strategies import conv_configs, pool_configs

# ------------------------------------------------------------ naive NumPy references


def reference_conv2d(x, kernel, bias, strides, padding):
    """Loop-based cross-correlation with TensorFlow's "same" split."""
    kh, kw = kernel.shape[:2]
    sh, sw = strides
    if padding == "same":
        pads = []
        for size, k, s in ((x.shape[1], kh, sh), (x.shape[2], kw, sw)):
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    rows = (x.shape[1] - kh) // sh + 1
    cols = (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], rows, cols, kernel.shape[3]))
    for i in range(rows):
        for j in range(cols):
            window = x[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            out[:, i, j, :] = np.tensordot(window, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return out + bias


def reference_pool2d(x, size, strides, padding, mode):
    """Loop-based pooling; padded cells are ignored (NaN-aware reductions)."""
    (ph, pw), (sh, sw) = size, strides
    if padding == "same":
        pads = []
        for n, k, s in ((x.shape[1], ph, sh), (x.shape[2], pw, sw)):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x.astype(float), ((0, 0), pads[0], pads[1], (0, 0)), constant_values=np.nan)
    rows = (x.shape[1] - ph) // sh + 1
    cols = (x.shape[2] - pw) // sw + 1
    reduce = np.nanmax if mode == "max" else np.nanmean
    out = np.zeros((x.shape[0], rows, cols, x.shape[3]))
    for i in range(rows):
        for j in range(cols):
            out[:, i, j, :] = reduce(x[:, i * sh : i * sh + ph, j * sw : j * sw + pw], axis=(1, 2))
    return out


def reference_batchnorm(x, gamma, beta, mean, variance, axis=-1, epsilon=1e-3):
    shape = [1] * x.ndim
    shape[axis] = -1
    normalized = (x - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + epsilon)
    return normalized * gamma.reshape(shape) + beta.reshape(shape)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# Each case: (layer factory, input shape with batch, number of weights, reference(x, weights)).
CASES = {
    "input_layer": (lambda: L.InputLayer(shape=(4,)), (2, 4), 0, lambda x, w: x),
    "dense_relu": (
        lambda: L.Dense(3, activation="relu"),
        (4, 5),
        2,
        lambda x, w: np.maximum(x @ w[0] + w[1], 0),
    ),
    "dense_3d_no_bias": (
        lambda: L.Dense(3, use_bias=False, kernel_initializer="he_normal"),
        (2, 3, 5),
        1,
        lambda x, w: x @ w[0],
    ),
    "dense_regularized_seeded": (
        lambda: L.Dense(
            2,
            activation="sigmoid",
            kernel_initializer=initializers.HeNormal(seed=1),
            kernel_regularizer="l2",
            bias_regularizer=regularizers.l1(0.1),
        ),
        (3, 4),
        2,
        lambda x, w: 1 / (1 + np.exp(-(x @ w[0] + w[1]))),
    ),
    "conv2d_same_tanh": (
        lambda: L.Conv2D(3, 3, padding="same", activation="tanh"),
        (2, 5, 5, 2),
        2,
        lambda x, w: np.tanh(reference_conv2d(x, w[0], w[1], (1, 1), "same")),
    ),
    "conv2d_valid_strided": (
        lambda: L.Conv2D(2, (2, 3), strides=2),
        (2, 6, 7, 3),
        2,
        lambda x, w: reference_conv2d(x, w[0], w[1], (2, 2), "valid"),
    ),
    "maxpool": (
        lambda: L.MaxPooling2D(),
        (2, 4, 5, 2),
        0,
        lambda x, w: reference_pool2d(x, (2, 2), (2, 2), "valid", "max"),
    ),
    "avgpool_same": (
        lambda: L.AveragePooling2D(3, strides=2, padding="same"),
        (2, 5, 4, 2),
        0,
        lambda x, w: reference_pool2d(x, (3, 3), (2, 2), "same", "avg"),
    ),
    "global_avg": (
        lambda: L.GlobalAveragePooling2D(),
        (2, 3, 3, 2),
        0,
        lambda x, w: x.mean(axis=(1, 2)),
    ),
    "global_max_keepdims": (
        lambda: L.GlobalMaxPooling2D(keepdims=True),
        (2, 3, 3, 2),
        0,
        lambda x, w: x.max(axis=(1, 2), keepdims=True),
    ),
    "flatten": (lambda: L.Flatten(), (2, 3, 2, 2), 0, lambda x, w: x.reshape(2, -1)),
    "reshape": (lambda: L.Reshape((-1, 2)), (2, 6), 0, lambda x, w: x.reshape(2, 3, 2)),
    "dropout": (lambda: L.Dropout(0.5, seed=1), (2, 6), 0, lambda x, w: x),
    "activation_softmax": (lambda: L.Activation("softmax"), (2, 6), 0, lambda x, w: softmax(x)),
    "zero_padding": (
        lambda: L.ZeroPadding2D(((1, 0), (2, 1))),
        (2, 3, 3, 1),
        0,
        lambda x, w: np.pad(x, ((0, 0), (1, 0), (2, 1), (0, 0))),
    ),
    "batchnorm_dense": (
        lambda: L.BatchNormalization(),
        (4, 3),
        4,
        lambda x, w: reference_batchnorm(x, *w),
    ),
    "batchnorm_axis1_no_center": (
        lambda: L.BatchNormalization(axis=1, center=False),
        (4, 3, 2),
        3,
        lambda x, w: reference_batchnorm(x, w[0], np.zeros(3), w[1], w[2], axis=1),
    ),
    "batchnorm_images": (
        lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-2),
        (4, 3, 3, 2),
        4,
        lambda x, w: reference_batchnorm(x, *w, epsilon=1e-2),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_conformance_and_values(case):
    make_layer, input_shape, n_weights, reference = CASES[case]
    layer = make_layer()
    result = check_layer(
        layer, input_shape, n_weights, step_training=not isinstance(layer, L.Dropout)
    )
    expected = reference(result.x, result.weights)
    np.testing.assert_allclose(result.output, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------ running a layer


def run_layer(layer, x, training, weights=None):
    """Build ``layer`` for ``x`` (``None`` in ``weights`` keeps that weight) and run it once."""
    layer.build_for((None, *x.shape[1:]))
    if weights is not None:
        current = layer.get_weights()
        layer.set_weights([c if w is None else w for c, w in zip(current, weights)])

    def step(inputs):
        return [layer(inputs, training=training)], layer.pop_updates()

    return K.function(step, [((None, *x.shape[1:]), "float32")])(x)[0]


# ---------------------------------------------- random conv/pool configs (default backend)


@settings(max_examples=15, deadline=None)
@given(conv_configs())
def test_conv2d_shape_and_values_for_random_configs(config):
    kh, kw, _, filters = config.kernel.shape
    layer = L.Conv2D(filters, (kh, kw), strides=config.strides, padding=config.padding)
    out = run_layer(
        layer, config.x.astype("float32"), training=False, weights=[config.kernel, None]
    )
    assert out.shape == layer.compute_output_shape(config.x.shape)
    expected = reference_conv2d(config.x, config.kernel, 0.0, config.strides, config.padding)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(pool_configs())
def test_pooling_shape_and_values_for_random_configs(config):
    cls = L.MaxPooling2D if config.pool_mode == "max" else L.AveragePooling2D
    layer = cls(config.pool_size, strides=config.strides, padding=config.padding)
    out = run_layer(layer, config.x.astype("float32"), training=False)
    assert out.shape == layer.compute_output_shape(config.x.shape)
    expected = reference_pool2d(
        config.x, config.pool_size, config.strides, config.padding, config.pool_mode
    )
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ behaviour per backend


def test_dropout_zeroes_a_fraction_and_scales_the_rest(backend):
    x = np.ones((50, 40), dtype="float32")
    out = run_layer(L.Dropout(0.25, seed=3), x, training=True)
    kept = out != 0
    assert 0.68 < kept.mean() < 0.82
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(run_layer(L.Dropout(0.25), x, training=False), x)


def test_batchnorm_training_uses_batch_stats_and_updates_moving_averages(backend):
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 3)).astype("float32")
    layer = L.BatchNormalization(momentum=0.9)
    out = run_layer(layer, x, training=True)
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    gamma, beta, moving_mean, moving_variance = layer.get_weights()
    np.testing.assert_allclose(moving_mean, 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(moving_variance, 0.9 + 0.1 * x.var(0), rtol=1e-5)
    assert [layer.weight_name(w) for w in layer.non_trainable_weights] == [
        f"{layer.name}/moving_mean:0",
        f"{layer.name}/moving_variance:0",
    ]


def test_frozen_batchnorm_uses_moving_stats_even_when_training(backend):
    x = np.random.default_rng(1).normal(size=(6, 2)).astype("float32")
    layer = L.BatchNormalization(trainable=False)
    out = run_layer(layer, x, training=True)
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-5)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4
    np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(2))


# ------------------------------------------------------- shapes, names, configs, seeds


def test_input_shape_kwargs_and_input_layer():
    assert L.Dense(2, input_dim=4).batch_input_shape == (None, 4)
    assert L.Dense(2, input_shape=(3, 4)).batch_input_shape == (None, 3, 4)
    assert L.Dense(2, batch_input_shape=(8, 4)).batch_input_shape == (8, 4)
    tensor = L.Input(shape=(60,), name="features")
    assert tensor.shape == (None, 60) and tensor.dtype == "float32"
    layer = tensor.node.layer
    assert isinstance(layer, L.InputLayer) and layer.output is tensor
    assert layer.batch_input_shape == (None, 60)
    assert L.InputLayer(shape=(3,), batch_size=5).batch_input_shape == (5, 3)
    assert layer.build_for((None, 60)) == (None, 60)
    rebuilt = L.deserialize(L.serialize(layer))
    assert rebuilt.batch_input_shape == (None, 60) and rebuilt.name == "features"
    dense = L.deserialize(L.serialize(L.Dense(2, input_dim=4)))
    assert dense.batch_input_shape == (None, 4)


def test_keras_weight_names_shapes_and_order():
    dense = L.Dense(4, name="fc")
    dense.build_for((None, 3))
    assert [dense.weight_name(w) for w in dense.weights] == ["fc/kernel:0", "fc/bias:0"]
    assert [w.shape for w in dense.get_weights()] == [(3, 4), (4,)]
    conv = L.Conv2D(5, (2, 3), name="c")
    conv.build_for((None, 8, 8, 2))
    assert [w.shape for w in conv.get_weights()] == [(2, 3, 2, 5), (5,)]
    bn = L.BatchNormalization(name="bn")
    bn.build_for((None, 4, 4, 3))
    names = [bn.weight_name(w) for w in bn.weights]
    assert names == ["bn/gamma:0", "bn/beta:0", "bn/moving_mean:0", "bn/moving_variance:0"]
    assert bn.count_params() == 12 and len(bn.trainable_weights) == 2


def test_layer_classes_by_name_and_aliases():
    assert L.get_layer_class("MaxPool2D") is L.MaxPooling2D
    assert L.get_layer_class("Convolution2D") is L.Conv2D
    assert L.Convolution2D is L.Conv2D and L.AvgPool2D is L.AveragePooling2D
    with pytest.raises(ValueError, match="Unknown layer class 'Dense2'.*Valid classes: .*Dense"):
        L.get_layer_class("Dense2")
    with pytest.raises(ValueError, match="class_name"):
        L.deserialize({"config": {}})


def test_add_weight_seed_and_initializer_checks():
    layer = L.Layer(name="custom")
    first = layer.add_weight("a", (3, 2), "he_normal", seed=4)
    second = layer.add_weight("b", (3, 2), initializers.HeNormal(seed=9), seed=4)
    layer.add_weight("c", (2,), "zeros", seed=4, trainable=False)
    np.testing.assert_array_equal(K.get_value(first), K.get_value(second))
    assert len(layer.trainable_weights) == 2 and layer.count_params() == 14
    with pytest.raises(ValueError, match=r"Initializer for weight 'd' of layer 'custom'"):
        layer.add_weight("d", (2,), lambda shape, dtype: np.zeros(3))


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs two installed backends")
def test_same_seed_gives_same_initial_weights_on_every_backend():
    weights = []
    for name in installed_backends():
        K.set_backend(name)
        minidl.set_random_seed(7)
        unseeded = L.Conv2D(2, 3)
        unseeded.build_for((None, 5, 5, 1))
        seeded = L.Dense(3, kernel_initializer=initializers.HeNormal(seed=11))
        seeded.build_for((None, 4))
        weights.append(unseeded.get_weights() + seeded.get_weights())
    for other in weights[1:]:
        for got, want in zip(other, weights[0]):
            np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.Dense(0, name="d"), r"argument `units` of Dense layer 'd'.*Received: units=0"),
        (lambda: L.Dense(2.5), r"`units` of Dense .*positive integer. Received: units=2.5"),
        (lambda: L.Dense(True), r"Received: units=True"),
        (lambda: L.Dense(2, activation="relux"), r"Unknown activation function 'relux'.*relu"),
        (lambda: L.Dense(2, kernel_initializer="glorot"), r"Unknown initializer 'glorot'"),
        (lambda: L.Conv2D(0, 3), r"`filters` of Conv2D .*Received: filters=0"),
        (lambda: L.Conv2D(2, (3,)), r"`kernel_size` of Conv2D.*Received: kernel_size=\(3,\)"),
        (lambda: L.Conv2D(2, (0, 3)), r"`kernel_size`.*Received: kernel_size=\(0, 3\)"),
        (lambda: L.Conv2D(2, 3, strides=-1), r"`strides` of Conv2D.*Received: strides=-1"),
        (lambda: L.Conv2D(2, 3, padding="full"), r"`padding`.*'valid', 'same'.*'full'"),
        (lambda: L.Conv2D(2, 3, data_format="channels_middle"), r"`data_format`.*channels_last"),
        (lambda: L.MaxPooling2D(0), r"`pool_size` of MaxPooling2D.*Received: pool_size=0"),
        (lambda: L.AveragePooling2D(2, strides=(1, 0)), r"`strides` of AveragePooling2D"),
        (lambda: L.MaxPooling2D(padding="causal"), r"`padding` of MaxPooling2D"),
        (lambda: L.GlobalMaxPooling2D(data_format="NCHW"), r"`data_format`"),
        (lambda: L.Dropout(1.0), r"`rate` of Dropout.*\[0, 1\). Received: rate=1.0"),
        (lambda: L.Dropout(-0.1), r"Received: rate=-0.1"),
        (lambda: L.Dropout("0.5"), r"Received: rate='0.5'"),
        (lambda: L.Dropout(0.5, seed="x"), r"`seed` of Dropout"),
        (lambda: L.Reshape((0, 2)), r"`target_shape` of Reshape.*Received: target_shape=\(0, 2\)"),
        (lambda: L.Reshape((-1, -1)), r"at most one -1"),
        (lambda: L.Reshape("ab"), r"`target_shape`"),
        (lambda: L.ZeroPadding2D(-1), r"`padding` of ZeroPadding2D.*Received: padding=-1"),
        (lambda: L.ZeroPadding2D((1, 2, 3)), r"`padding` of ZeroPadding2D"),
        (lambda: L.BatchNormalization(momentum=1.5), r"`momentum` of BatchNormalization"),
        (lambda: L.BatchNormalization(epsilon=0), r"`epsilon`.*positive.*Received: epsilon=0"),
        (lambda: L.BatchNormalization(axis="a"), r"`axis` of BatchNormalization"),
        (lambda: L.InputLayer(), r"InputLayer .* needs the shape of its input"),
        (lambda: L.InputLayer(shape=(0, 3)), r"`shape` of InputLayer"),
        (lambda: L.InputLayer(shape=(3,), batch_size=0), r"`batch_size` of InputLayer"),
        (lambda: L.Dense(2, name=""), r"`name` must be a non-empty string"),
    ],
)
def test_invalid_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_unknown_keyword_argument_is_a_type_error():
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments passed to Dense.*outpt"):
        L.Dense(2, outpt=3)


@pytest.mark.parametrize(
    "make, input_shape, message",
    [
        (lambda: L.Dense(2), (None, 4, 4, 3), r"Dense.*expected a 2-D input.*Add a Flatten layer"),
        (lambda: L.Dense(2), (None,), r"expected a 2-D input.*Received: input_shape=\(None,\)"),
        (lambda: L.Dense(2), (None, None), r"last axis .* must be known"),
        (lambda: L.Conv2D(2, 3), (None, 8, 3), r"Conv2D.*expected a 4-D input.*\(None, 8, 3\)"),
        (lambda: L.Conv2D(2, 3), (None, 2, 8, 1), r"empty output"),
        (lambda: L.MaxPooling2D(), (None, 8), r"MaxPooling2D.*expected a 4-D input"),
        (lambda: L.MaxPooling2D(3), (None, 2, 2, 1), r"empty output"),
        (lambda: L.GlobalAveragePooling2D(), (None, 8, 2), r"expected a 4-D input"),
        (lambda: L.ZeroPadding2D(), (None, 8), r"ZeroPadding2D.*expected a 4-D input"),
        (lambda: L.Reshape((4, 2)), (None, 6), r"cannot reshape samples of shape \(6,\)"),
        (lambda: L.Reshape((-1, 4)), (None, 6), r"cannot reshape"),
        (lambda: L.Reshape((-1, 2)), (None, None), r"cannot infer the -1"),
        (lambda: L.BatchNormalization(axis=0), (None, 3), r"cannot normalize over axis 0"),
        (lambda: L.BatchNormalization(axis=3), (None, 3), r"axis 3 of a 2-D input"),
        (lambda: L.InputLayer(shape=(3,)), (None, 4), r"expected shape \(None, 3\)"),
        (lambda: L.Conv2D(2, 3), (None, 5, 5, None), r"channel axis .* must be known"),
        (lambda: L.BatchNormalization(), (None, None), r"Axis -1 .* must have a known size"),
    ],
)
def test_wrong_input_shape_raises_naming_the_layer(make, input_shape, message):
    layer = make()
    with pytest.raises(ValueError, match=message):
        layer.build_for(input_shape)


def test_rebuilding_with_another_input_size_is_rejected():
    dense = L.Dense(2, name="fc")
    dense.build_for((None, 3))
    with pytest.raises(ValueError, match=r"'fc'.*expected a last axis of 3.*\(None, 5\)"):
        dense.build_for((None, 5))
    conv = L.Conv2D(2, 3)
    conv.build_for((None, 5, 5, 1))
    with pytest.raises(ValueError, match=r"expected 1 channels"):
        conv.build_for((None, 5, 5, 2))


def test_set_weights_checks_count_and_shapes():
    dense = L.Dense(2, name="fc")
    dense.build_for((None, 3))
    with pytest.raises(ValueError, match=r"expects 2 weight arrays.*Received: 1 arrays"):
        dense.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"'fc/kernel:0'.*\(3, 2\).*shape \(2, 3\)"):
        dense.set_weights([np.zeros((2, 3)), np.zeros(2)])


def test_calling_an_unbuilt_layer_is_an_error():
    with pytest.raises(RuntimeError, match="must be built"):
        L.Dense(2)(None)
