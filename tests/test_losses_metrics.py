"""Losses, metrics and weight penalties: values vs plain NumPy on every backend, lookups."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from minidl import activations, initializers, losses, metrics, regularizers
from minidl import backend as K
from minidl.layers import Conv2D, Dense

EPS = 1e-7
RNG = np.random.default_rng(0)

# Binary targets/probabilities (batch 4, 2 outputs), including the clipping edges.
Y_BIN = np.array([[0, 1], [1, 1], [0, 0], [1, 0]], dtype="float32")
P_BIN = np.array([[0.2, 0.7], [0.5, 1.0], [0.0, 0.4], [0.9, 0.6]], dtype="float32")
# Categorical: 4 samples, 3 classes; P_CAT rows deliberately not normalised in the last row.
LABELS = np.array([2, 0, 1, 1])
Y_CAT = np.eye(3, dtype="float32")[LABELS]
P_CAT = np.array(
    [[0.1, 0.2, 0.7], [0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.2, 0.4, 0.2]], dtype="float32"
)
Y_REG = RNG.normal(size=(4, 3)).astype("float32")
P_REG = RNG.normal(size=(4, 3)).astype("float32")


def np_binary_crossentropy(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(axis=-1)


def np_categorical_crossentropy(t, p):
    p = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(p)).sum(axis=-1)


def run(fn, *arrays):
    """Compile ``fn`` over the given arrays on the current backend and return its outputs."""
    specs = [((None, *a.shape[1:]), str(a.dtype)) for a in arrays]
    return K.function(lambda *xs: (fn(*xs), []), specs)(*arrays)


def test_losses_match_numpy(backend):
    def fn(y_bin, p_bin, y_cat, p_cat, labels, y_reg, p_reg, labels_column, y_vector, p_column):
        return [
            losses.get("binary_crossentropy")(y_bin, p_bin),
            losses.get("categorical_crossentropy")(y_cat, p_cat),
            losses.get("sparse_categorical_crossentropy")(labels, p_cat),
            losses.get("sparse_categorical_crossentropy")(labels_column, p_cat),
            losses.get("mse")(y_reg, p_reg),
            losses.get("mae")(y_reg, p_reg),
            losses.get("mean_squared_error")(y_vector, p_column),
        ]

    labels = LABELS.astype("int64")
    arrays = (Y_BIN, P_BIN, Y_CAT, P_CAT, labels, Y_REG, P_REG, labels[:, None])
    got = run(fn, *arrays, Y_REG[:, 0], P_REG[:, :1])
    expected = [
        np_binary_crossentropy(Y_BIN, P_BIN),
        np_categorical_crossentropy(Y_CAT, P_CAT),
        np_categorical_crossentropy(Y_CAT, P_CAT),
        np_categorical_crossentropy(Y_CAT, P_CAT),
        ((P_REG - Y_REG) ** 2).mean(axis=-1),
        np.abs(P_REG - Y_REG).mean(axis=-1),
        (P_REG[:, 0] - Y_REG[:, 0]) ** 2,
    ]
    for index, (value, want) in enumerate(zip(got, expected)):
        assert value.shape == (4,), index
        np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-6, err_msg=str(index))


def test_crossentropies_stay_finite_after_saturated_sigmoid_and_softmax(backend):
    logits = np.array([[30.0, -30.0, 0.0], [-40.0, 40.0, 1.0]], dtype="float32")
    onehot = np.array([[0, 1, 0], [1, 0, 0]], dtype="float32")

    def fn(z, t):
        return [
            losses.categorical_crossentropy(t, K.softmax(z)),
            losses.binary_crossentropy(t, K.sigmoid(z)),
            losses.binary_crossentropy(t, z, from_logits=True),
            losses.categorical_crossentropy(t, z, from_logits=True),
        ]

    cat, binary, binary_logits, cat_logits = run(fn, logits, onehot)
    z = logits.astype(float)
    log_softmax = z - z.max(-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    expected_cat = -(onehot * log_softmax).sum(-1)
    expected_bin = (np.maximum(z, 0) - z * onehot + np.log1p(np.exp(-np.abs(z)))).mean(-1)
    np.testing.assert_allclose(cat, expected_cat, rtol=1e-4)
    np.testing.assert_allclose(cat_logits, expected_cat, rtol=1e-4)
    np.testing.assert_allclose(binary, expected_bin, rtol=1e-4)
    np.testing.assert_allclose(binary_logits, expected_bin, rtol=1e-4)


def test_metrics_match_numpy(backend):
    scores = np.array(
        [[0.1, 0.5, 0.3, 0.05, 0.05], [0.4, 0.1, 0.2, 0.2, 0.1], [0.3, 0.25, 0.2, 0.15, 0.1]],
        dtype="float32",
    )
    top_labels = np.array([2, 4, 1])

    def fn(y_bin, p_bin, y_cat, p_cat, labels, labels_column, y_top, p_top):
        return [
            metrics.get("accuracy", "binary_crossentropy")(y_bin, p_bin),
            metrics.get("acc", "categorical_crossentropy")(y_cat, p_cat),
            metrics.get("accuracy", "sparse_categorical_crossentropy")(labels, p_cat),
            metrics.get("sparse_categorical_accuracy")(labels_column, p_cat),
            metrics.get("mae")(y_bin, p_bin),
            metrics.top_k_categorical_accuracy(y_top, p_top, k=2),
        ]

    labels = LABELS.astype("int64")
    y_top = np.eye(5, dtype="float32")[top_labels]
    got = run(fn, Y_BIN, P_BIN, Y_CAT, P_CAT, labels, labels[:, None], y_top, scores)
    categorical = (P_CAT.argmax(-1) == LABELS).astype("float32")
    expected = [
        (Y_BIN == (P_BIN > 0.5)).mean(axis=-1),
        categorical,
        categorical,
        categorical,
        np.abs(P_BIN - Y_BIN).mean(axis=-1),
        [1.0, 0.0, 1.0],
    ]
    for index, (value, want) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(value, want, rtol=1e-6, err_msg=str(index))
    # Threshold: exactly 0.5 counts as class 0; a tie in arg-max picks the first class.
    np.testing.assert_array_equal(got[0], [1.0, 0.5, 1.0, 0.5])
    np.testing.assert_array_equal(got[1], [1.0, 1.0, 0.0, 1.0])


def test_accuracy_is_chosen_from_the_loss_as_keras_does():
    assert metrics.get("accuracy", "binary_crossentropy") is metrics.binary_accuracy
    assert metrics.get("acc", "categorical_crossentropy") is metrics.categorical_accuracy
    assert metrics.get("accuracy", "sparse_categorical_crossentropy") is (
        metrics.sparse_categorical_accuracy
    )
    assert metrics.get("accuracy", "mse", output_shape=(None, 1)) is metrics.binary_accuracy
    assert metrics.get("accuracy", "mse", output_shape=(None, 4)) is metrics.categorical_accuracy
    assert metrics.get("accuracy") is metrics.categorical_accuracy
    assert metrics.get("mse") is losses.mean_squared_error
    assert metrics.get(" MAE ") is losses.mean_absolute_error
    custom = lambda t, p: p  # noqa: E731
    assert metrics.get(custom) is custom


def test_loss_lookup_names_and_errors():
    for name, fn in losses.LOSSES.items():
        assert losses.get(name) is fn and fn.__name__ == name and losses.serialize(fn) == name
    assert losses.get("MSE") is losses.mean_squared_error
    assert losses.get("mae") is losses.mean_absolute_error
    with pytest.raises(ValueError, match=r"Unknown loss 'hingey'. Valid names: .*mse"):
        losses.get("hingey")
    with pytest.raises(TypeError, match=r"name or a callable"):
        losses.get(1)
    with pytest.raises(ValueError, match=r"Unknown metric 'f1'. Valid names: .*accuracy"):
        metrics.get("f1")
    with pytest.raises(TypeError, match=r"name or a callable"):
        metrics.get(None)


def test_categorical_loss_with_integer_labels_suggests_the_sparse_loss(backend):
    with pytest.raises(ValueError, match=r"use `sparse_categorical_crossentropy`"):
        run(lambda t, p: [losses.categorical_crossentropy(t, p)], LABELS.astype("int64"), P_CAT)
    with pytest.raises(ValueError, match=r"`mean_squared_error` expects targets with the rank"):
        run(lambda t, p: [losses.mean_squared_error(t, p)], Y_REG[:, :, None, None], P_REG)


# ------------------------------------------------------------------------ regularizers


def test_weight_penalties_match_numpy(backend):
    kernel = np.array([[1.0, -2.0], [0.5, 0.0], [-1.5, 3.0]], dtype="float32")
    bias = np.array([0.5, -1.0], dtype="float32")
    dense = Dense(2, kernel_regularizer=regularizers.l1_l2(0.1, 0.2), bias_regularizer="l2")
    dense.build_for((None, 3))
    dense.set_weights([kernel, bias])
    conv = Conv2D(1, 2, kernel_regularizer=regularizers.L1L2(), use_bias=False)
    conv.build_for((None, 3, 3, 1))

    def fn(x):
        return dense.regularization_losses() + conv.regularization_losses(), []

    kernel_penalty, bias_penalty, zero = K.function(fn, [((None, 1), "float32")])(
        np.zeros((1, 1), "float32")
    )
    expected = 0.1 * np.abs(kernel).sum() + 0.2 * (kernel**2).sum()
    np.testing.assert_allclose(kernel_penalty, expected, rtol=1e-6)
    np.testing.assert_allclose(bias_penalty, 0.01 * (bias**2).sum(), rtol=1e-6)
    assert float(zero) == 0.0


def test_regularizer_lookup_serialization_and_errors():
    assert regularizers.get(None) is None
    assert regularizers.get("l1").get_config() == {"l1": 0.01, "l2": 0.0}
    penalty = regularizers.l1_l2(0.3, 0.4)
    assert regularizers.get(regularizers.serialize(penalty)).get_config() == {"l1": 0.3, "l2": 0.4}
    dense = Dense(3, kernel_regularizer=penalty, name="fc")
    clone = Dense.from_config(dense.get_config())
    assert clone.get_config() == dense.get_config()
    assert clone.kernel_regularizer.get_config() == {"l1": 0.3, "l2": 0.4}
    with pytest.raises(ValueError, match=r"Unknown regularizer 'l3'. Valid names: l1, l2"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match=r"`l2` of regularizer L1L2.*Received: l2=-1"):
        regularizers.l2(-1)
    with pytest.raises(ValueError, match=r"Unknown regularizer class 'Orthogonal'"):
        regularizers.get({"class_name": "Orthogonal", "config": {}})


def test_serializing_an_object_without_a_name_is_an_error():
    nameless = functools.partial(np.add, 1)
    for module in (activations, initializers, losses, regularizers):
        with pytest.raises(ValueError, match=r"(?i)cannot serialize"):
            module.serialize(nameless)
