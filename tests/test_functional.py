"""Functional models: graphs of layers, inspection, several inputs/outputs, nesting, errors.

Each training test runs on every installed backend; numbers are compared with NumPy
formulas written here (losses), or with a sub-model run of the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import backend as K
from minidl.engine.node import KerasTensor
from minidl.layers import (
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Input,
    InputLayer,
    MaxPooling2D,
    add,
)
from minidl.models import Model, Sequential
from tests.conftest import installed_backends
from tests.small_models import small_cnn
from tests.strategies import float_arrays, shapes

RNG = np.random.default_rng(5)
XA = RNG.normal(size=(20, 3)).astype("float32")
XB = RNG.normal(size=(20, 3)).astype("float32")
Y_BIN = (XA[:, 0] + XB[:, 1] > 0).astype("float32")
Y_REG = np.stack([XA[:, 1] - XB[:, 2], XA[:, 2]], axis=1).astype("float32")


def two_branch_model(seed: int = 0) -> Model:
    """Two inputs through one shared Dense, merged, with a binary and a regression output."""
    minidl.set_random_seed(seed)
    a, b = Input(shape=(3,), name="a"), Input(shape=(3,), name="b")
    shared = Dense(4, activation="tanh", name="shared")
    merged = Concatenate(name="merge")([shared(a), shared(b)])
    hidden = Dense(5, activation="relu", name="hidden")(merged)
    cls = Dense(1, activation="sigmoid", name="cls")(hidden)
    reg = Dense(2, name="reg")(add([hidden, Dense(5, name="skip")(merged)]))
    return Model(inputs=[a, b], outputs=[cls, reg], name="two_branch")


# ---------------------------------------------------------------- graph and inspection
def test_input_is_symbolic_and_layers_called_on_it_return_new_tensors():
    x = Input(shape=(4,), name="features", dtype="float64")
    assert isinstance(x, KerasTensor) and x.shape == (None, 4) and x.dtype == "float64"
    dense = Dense(3, name="d", dtype="float64")
    y = dense(x)
    assert isinstance(y, KerasTensor) and y.shape == (None, 3) and y is not x
    assert dense.input is x and dense.output is y
    assert dense.input_shape == (None, 4) and dense.output_shape == (None, 3)
    with pytest.raises(TypeError, match="no value"):
        np.asarray(y)
    assert K.int_shape(y) == (None, 3) and K.ndim(y) == 2 and K.dtype(y) == "float64"


def test_model_inspection_as_in_keras_2():
    model = two_branch_model()
    assert [layer.name for layer in model.layers] == [
        "a",
        "b",
        "shared",
        "merge",
        "hidden",
        "skip",
        "add",
        "cls",
        "reg",
    ]  # Keras 2's order: by decreasing depth, ties in the order met walking back from outputs
    assert isinstance(model.layers[0], InputLayer)
    assert model.input_names == ["a", "b"] and model.output_names == ["cls", "reg"]
    assert model.input_shape == [(None, 3), (None, 3)]
    assert model.output_shape == [(None, 1), (None, 2)]
    assert model.input == model.inputs and model.output == model.outputs
    assert model.get_layer("hidden") is model.layers[4] and model.get_layer(index=-1).name == "reg"
    assert model.get_layer("hidden").output_shape == (None, 5)
    with pytest.raises(ValueError, match="No such layer: 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="has 9 layers. Received: index=9"):
        model.get_layer(index=9)
    single = Model(input=model.inputs[0], output=model.get_layer("shared").get_output_at(0))
    assert single.input is model.inputs[0] and single.output_shape == (None, 4)


def test_a_shared_layer_has_no_single_input_and_says_so():
    model = two_branch_model()
    shared = model.get_layer("shared")
    with pytest.raises(AttributeError, match=r"Layer 'shared' has been called 2 times"):
        _ = shared.output
    with pytest.raises(AttributeError, match="'shared' has been called 2 times"):
        _ = shared.input
    assert shared.input_shape == (None, 3)  # the same shape at both calls
    assert shared.get_input_at(1) is model.inputs[1]
    unused = Dense(2, name="unused")
    with pytest.raises(AttributeError, match="'unused' is not connected"):
        _ = unused.output


def test_summary_of_a_graph_has_keras_2_connected_to_column():
    lines: list[str] = []
    two_branch_model().summary(print_fn=lines.append)
    header = lines[2]
    assert header.split() == ["Layer", "(type)", "Output", "Shape", "Param", "#", "Connected", "to"]
    assert len(lines[1]) == 98
    shared_row = next(i for i, line in enumerate(lines) if line.startswith("shared (Dense)"))
    assert lines[shared_row].rstrip().endswith("a[0][0]")
    assert lines[shared_row + 1].strip() == "b[0][0]"
    merge_row = next(line for line in lines if line.startswith("merge (Concatenate)"))
    assert merge_row.rstrip().endswith("shared[0][0]")
    assert "Total params: 124" in lines  # shared 16 (counted once), hidden 45, skip 45, 6, 12
    lines.clear()
    Sequential([Dense(2, input_dim=3)]).summary(print_fn=lines.append)
    assert "Connected to" not in lines[2] and len(lines[1]) == 65


def test_sequential_is_a_model_with_a_graph():
    model = Sequential([Dense(4, input_dim=3, name="first"), Dense(2, name="second")])
    assert isinstance(model, Model)
    assert [layer.name for layer in model.layers] == ["first", "second"]
    assert model.input.shape == (None, 3) and model.output is model.layers[-1].output
    assert model.layers[0].input is model.input
    features = Model(model.input, model.get_layer("first").output)
    kernel, bias = model.layers[0].get_weights()
    np.testing.assert_allclose(features.predict(XA), XA @ kernel + bias, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ bad input
def test_a_disconnected_graph_names_the_missing_input():
    a, b = Input(shape=(3,), name="given"), Input(shape=(3,), name="forgotten")
    out = Concatenate()([Dense(2)(a), Dense(2)(b)])
    with pytest.raises(ValueError, match="Graph disconnected.*'forgotten'"):
        Model(a, out)
    other_graph = Dense(1)(Input(shape=(3,), name="other_models_input"))
    with pytest.raises(ValueError, match="'other_models_input'"):
        Model(a, other_graph)


def test_duplicate_names_and_non_tensors_are_rejected_without_side_effects():
    a = Input(shape=(3,))
    first = Dense(2, name="twin")(a)
    second = Dense(2, name="twin")(first)
    with pytest.raises(ValueError, match="must be unique.*'twin'"):
        Model(a, second, name="dupes")
    with pytest.raises(TypeError, match="must be symbolic tensors"):
        Model(a, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="must come from minidl.layers.Input"):
        Model(first, second)
    with pytest.raises(TypeError, match="mix of symbolic tensors"):
        Concatenate()([a, K.variable(np.zeros((1, 3), "float32"))])


def test_wrong_rank_or_size_names_the_layer_and_both_shapes():
    dense = Dense(2, name="fc")
    dense(Input(shape=(3,)))
    with pytest.raises(ValueError, match=r"'fc' was built for inputs of shape \(None, 3\).*5"):
        dense(Input(shape=(5,)))
    with pytest.raises(ValueError, match=r"'conv'.*4-D.*\(None, 7\)"):
        Conv2D(2, 3, name="conv")(Input(shape=(7,)))
    assert len(dense.inbound_nodes) == 1  # the failed call left no node behind


def test_mismatched_compile_and_fit_keys_raise_one_clear_error_each():
    model = two_branch_model()
    with pytest.raises(ValueError, match=r"Unknown entries in `loss` dictionary: \['clss'\]"):
        model.compile("sgd", loss={"clss": "mse", "reg": "mse"})
    with pytest.raises(ValueError, match="one entry per model output.*2 outputs"):
        model.compile("sgd", loss=["mse"])
    with pytest.raises(ValueError, match="Unknown entries in `loss_weights`"):
        model.compile("sgd", loss="mse", loss_weights={"nope": 1.0})
    model.compile("sgd", loss=["binary_crossentropy", "mse"])
    with pytest.raises(ValueError, match=r"keys of `x`.*missing \['b'\]"):
        model.fit({"a": XA}, [Y_BIN, Y_REG], verbose=0)
    with pytest.raises(ValueError, match=r"2 inputs \['a', 'b'\].*Received: 1 array"):
        model.predict(XA)
    with pytest.raises(ValueError, match=r"keys of `y`.*unknown \['extra'\]"):
        model.fit([XA, XB], {"cls": Y_BIN, "reg": Y_REG, "extra": Y_BIN}, verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_bad_batch_sizes_name_the_argument_in_every_method(method, batch_size):
    model = Sequential([Dense(1, input_dim=3)])
    model.compile("sgd", "mse")
    args = (XA,) if method == "predict" else (XA, Y_BIN)
    with pytest.raises(ValueError, match=rf"`batch_size`.*Received: batch_size={batch_size}"):
        getattr(model, method)(*args, batch_size=batch_size, verbose=0)


def test_fit_on_zero_samples_raises_like_evaluate_and_predict():
    model = Sequential([Dense(1, input_dim=3)])
    model.compile("sgd", "mse")
    empty_x, empty_y = np.zeros((0, 3), "float32"), np.zeros((0,), "float32")
    with pytest.raises(ValueError, match="no data"):
        model.fit(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="no data"):
        model.evaluate(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="no data"):
        model.predict(empty_x)


# ------------------------------------------------------------- training several outputs
def _bce(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_two_inputs_two_outputs_train_with_dicts_and_keras_2_history_keys(backend):
    model = two_branch_model()
    model.compile(
        "adam",
        loss={"cls": "binary_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"]},
    )
    assert model.metrics_names == ["loss", "cls_loss", "reg_loss", "cls_accuracy"]
    history = model.fit(
        {"a": XA, "b": XB},
        {"cls": Y_BIN, "reg": Y_REG},
        batch_size=8,
        epochs=3,
        validation_split=0.25,
        verbose=0,
    )
    assert sorted(history.history) == sorted(
        [
            "loss",
            "cls_loss",
            "reg_loss",
            "cls_accuracy",
            "val_loss",
            "val_cls_loss",
            "val_reg_loss",
            "val_cls_accuracy",
        ]
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    cls_pred, reg_pred = model.predict([XA, XB], batch_size=7)
    assert cls_pred.shape == (20, 1) and reg_pred.shape == (20, 2)
    loss, cls_loss, reg_loss, acc = model.evaluate([XA, XB], [Y_BIN, Y_REG], verbose=0)
    want_cls = _bce(Y_BIN[:, None], cls_pred).mean()
    want_reg = ((reg_pred - Y_REG) ** 2).mean()
    np.testing.assert_allclose([cls_loss, reg_loss], [want_cls, want_reg], rtol=1e-4)
    np.testing.assert_allclose(loss, want_cls + 0.5 * want_reg, rtol=1e-4)
    np.testing.assert_allclose(acc, ((cls_pred[:, 0] > 0.5) == Y_BIN).mean(), rtol=1e-6)
    values = model.train_on_batch([XA, XB], [Y_BIN, Y_REG])
    assert len(values) == 4


def test_an_output_left_out_of_the_loss_dict_is_not_trained():
    model = two_branch_model()
    model.compile("sgd", loss={"reg": "mse"})
    assert model.metrics_names == ["loss", "reg_loss"]
    before = model.get_layer("cls").get_weights()
    model.fit([XA, XB], {"reg": Y_REG}, epochs=1, verbose=0)
    for a, b in zip(before, model.get_layer("cls").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_model_used_as_a_layer_twice_shares_its_weights(backend):
    minidl.set_random_seed(3)
    inner_in = Input(shape=(3,))
    encoder = Model(inner_in, Dense(2, activation="tanh", name="code")(inner_in), name="encoder")
    a, b = Input(shape=(3,)), Input(shape=(3,))
    distance = add([encoder(a), encoder(b)])
    siamese = Model([a, b], Dense(1, name="head")(distance))
    assert len(siamese.weights) == 4 and siamese.count_params() == 8 + 3
    code = encoder.predict(XA) + encoder.predict(XB)
    head = siamese.get_layer("head").get_weights()
    np.testing.assert_allclose(
        siamese.predict([XA, XB]), code @ head[0] + head[1], rtol=1e-5, atol=1e-6
    )
    assert siamese.get_layer("encoder").output_shape == (None, 2)


def test_layer_called_with_training_true_keeps_it_in_the_graph():
    x = Input(shape=(50,))
    model = Model(x, Dropout(0.5)(x, training=True))
    out = model.predict(np.ones((4, 50), "float32"))
    assert (out == 0).any() and (out == 2).any()  # dropout runs even in predict


def test_batch_norm_inside_a_graph_updates_its_statistics_in_fit(backend):
    x = Input(shape=(3,))
    model = Model(x, Dense(1)(BatchNormalization(name="bn")(Dense(4)(x))))
    model.compile("sgd", "mse")
    before = model.get_layer("bn").get_weights()[2]
    model.fit(XA, Y_BIN, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_layer("bn").get_weights()[2])


# ---------------------------------------------------------------- outputs of any rank
def _pixel_model(channels: int, activation: str) -> Model:
    minidl.set_random_seed(4)
    x = Input(shape=(6, 6, 2))
    return Model(x, Conv2D(channels, 3, padding="same", activation=activation)(x))


IMAGES = RNG.normal(size=(5, 6, 6, 2)).astype("float32")
MASKS = (IMAGES[..., :1] > 0).astype("float32")
LABELS = (IMAGES[..., 0] > 0).astype("int64") + (IMAGES[..., 1] > 1)
PIXEL_WEIGHTS = RNG.uniform(0, 2, size=(5, 6, 6)).astype("float32")


@pytest.mark.parametrize(
    "loss, channels, activation",
    [
        ("binary_crossentropy", 1, "sigmoid"),
        ("categorical_crossentropy", 3, "softmax"),
        ("sparse_categorical_crossentropy", 3, "softmax"),
        ("mse", 1, None),
    ],
)
def test_per_pixel_losses_average_every_axis_and_take_pixel_weights(
    backend, loss, channels, activation
):
    model = _pixel_model(channels, activation)
    model.compile("sgd", loss, metrics=["accuracy"] if channels > 1 else [])
    y = {1: MASKS, 3: np.eye(3, dtype="float32")[LABELS]}[channels]
    if loss.startswith("sparse"):
        y = LABELS
    history = model.fit(IMAGES, y, batch_size=2, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    pred = model.predict(IMAGES)
    if loss == "binary_crossentropy":
        per_pixel = _bce(MASKS, pred)[..., 0]
    elif loss == "mse":
        per_pixel = ((pred - MASKS) ** 2)[..., 0]
    else:
        per_pixel = -np.log(np.clip(np.take_along_axis(pred, LABELS[..., None], -1), 1e-7, 1))
        per_pixel = per_pixel[..., 0]
    result = model.evaluate(IMAGES, y, verbose=0)
    value = result[0] if isinstance(result, list) else result
    np.testing.assert_allclose(value, per_pixel.mean(), rtol=2e-4)
    if channels > 1:
        accuracy = (pred.argmax(-1) == LABELS).mean()
        np.testing.assert_allclose(result[1], accuracy, rtol=1e-6)
    weighted = model.evaluate(IMAGES, y, sample_weight=PIXEL_WEIGHTS, verbose=0)
    weighted = weighted[0] if isinstance(weighted, list) else weighted
    np.testing.assert_allclose(weighted, (per_pixel * PIXEL_WEIGHTS).mean(), rtol=2e-4)
    per_sample = np.arange(1, 6, dtype="float32")
    by_sample = model.evaluate(IMAGES, y, sample_weight=per_sample, verbose=0)
    by_sample = by_sample[0] if isinstance(by_sample, list) else by_sample
    want = (per_pixel.mean(axis=(1, 2)) * per_sample).mean()
    np.testing.assert_allclose(by_sample, want, rtol=2e-4)
    model.fit(IMAGES, y, sample_weight=PIXEL_WEIGHTS, epochs=1, verbose=0)


def test_dense_on_sequences_trains():
    x = Input(shape=(4, 3))
    model = Model(x, Dense(2)(x))
    model.compile("sgd", "mse")
    target = RNG.normal(size=(6, 4, 2)).astype("float32")
    history = model.fit(RNG.normal(size=(6, 4, 3)), target, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_sample_weights_of_the_wrong_shape_are_rejected():
    model = _pixel_model(1, "sigmoid")
    model.compile("sgd", "binary_crossentropy")
    with pytest.raises(ValueError, match=r"sample_weight.*Received: sample_weight.shape=\(5, 6\)"):
        model.fit(IMAGES, MASKS, sample_weight=np.ones((5, 6)), verbose=0)


# ------------------------------------------------------------ feature extraction
def _small_cnn() -> Sequential:
    return small_cnn(1, input_shape=(8, 8, 2), units=4, softmax=True, name="cnn")


def test_feature_extraction_from_a_layer_output_on_every_backend(backend):
    model = _small_cnn()
    images = RNG.normal(size=(3, 8, 8, 2)).astype("float32")
    features = Model(inputs=model.input, outputs=model.get_layer("logits").output)
    logits = features.predict(images)
    probs = model.predict(images)
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, softmax, rtol=1e-5, atol=1e-6)
    assert features.layers[1] is model.layers[0]  # the same layer objects, the same weights


def test_keras_faq_k_function_returns_numpy_arrays(backend):
    model = _small_cnn()
    images = RNG.normal(size=(3, 8, 8, 2)).astype("float32")
    get_flat = K.function([model.input], [model.layers[2].output])
    (flat,) = get_flat([images])
    assert isinstance(flat, np.ndarray) and flat.shape == (3, 27)
    expected = Model(model.input, model.get_layer("flat").output).predict(images)
    np.testing.assert_allclose(flat, expected, rtol=1e-6)


def test_frozen_pretrained_base_inside_a_new_model_trains_saves_and_reloads(backend, tmp_path):
    base = _small_cnn()
    base.trainable = False
    images = RNG.normal(size=(6, 8, 8, 2)).astype("float32")
    labels = (images[:, 0, 0, 0] > 0).astype("float32")
    inputs = Input(shape=(8, 8, 2), name="image")
    outputs = Dense(1, activation="sigmoid", name="new_head")(base(inputs))
    model = Model(inputs, outputs, name="transfer")
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    frozen = base.get_weights()
    head_before = model.get_layer("new_head").get_weights()
    model.fit(images, labels, epochs=2, batch_size=3, verbose=0)
    for a, b in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head_before[0], model.get_layer("new_head").get_weights()[0])
    path = tmp_path / "transfer.h5"
    model.save(path)
    from minidl.models import load_model

    again = load_model(path)
    assert isinstance(again.get_layer("cnn"), Sequential)
    assert not again.get_layer("cnn").trainable
    np.testing.assert_allclose(again.predict(images), model.predict(images), rtol=1e-6)
    np.testing.assert_allclose(
        again.evaluate(images, labels, verbose=0), model.evaluate(images, labels, verbose=0)
    )
    again.fit(images, labels, epochs=1, verbose=0)  # compiled, with the optimizer state
    for a, b in zip(frozen, again.get_layer("cnn").get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- the reduction rule
@st.composite
def _values_and_weights(draw):
    """Loss values of any rank >= 1 and weights per sample or per leading positions."""
    shape = draw(shapes(min_dims=1, max_dims=4))
    weight_rank = draw(st.integers(1, len(shape)))
    values = draw(float_arrays(shape, dtype="float32"))
    weights = draw(float_arrays(shape[:weight_rank], low=0.0, high=2.0, dtype="float32"))
    return values, weights


@settings(max_examples=12, deadline=None)
@given(_values_and_weights())
def test_weighted_reduction_matches_numpy_on_every_backend(pair):
    from minidl.engine.compile_utils import reduce_weighted

    values, weights = pair
    axes = tuple(range(weights.ndim, values.ndim))
    want = (values.mean(axis=axes) * weights).mean() if axes else (values * weights).mean()
    previous = K.name()
    try:
        for name in installed_backends():
            K.set_backend(name)
            step = K.function(
                lambda v, w: ([reduce_weighted(v, w)], []),
                [((None, *values.shape[1:]), "float32"), ((None, *weights.shape[1:]), "float32")],
            )
            (got,) = step(values, weights)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
    finally:
        K.set_backend(previous)


def test_vgg_feature_extraction_idiom():
    from minidl.applications import vgg_like

    minidl.set_random_seed(0)
    vgg = vgg_like(input_shape=(32, 32, 3), widths=(2, 2, 3, 3, 3), dense_units=4, classes=3)
    images = RNG.uniform(0, 1, size=(2, 32, 32, 3)).astype("float32")
    features = Model(inputs=vgg.input, outputs=vgg.get_layer("block4_pool").output)
    pooled = features.predict(images)
    assert pooled.shape == (2, 2, 2, 3)
    block5 = Model(vgg.input, vgg.get_layer("block5_pool").output).predict(images)
    assert block5.shape == (2, 1, 1, 3)
    np.testing.assert_allclose(Model(vgg.input, vgg.output).predict(images), vgg.predict(images))


def test_a_layer_shared_across_shapes_names_the_ambiguity():
    pool = MaxPooling2D(2, name="pool")
    small, large = Input(shape=(4, 4, 1)), Input(shape=(8, 8, 1))
    pool(small), pool(large)
    with pytest.raises(AttributeError, match=r"'pool'.*different shapes.*get_input_shape_at"):
        _ = pool.input_shape
    with pytest.raises(AttributeError, match=r"'pool'.*get_output_shape_at"):
        _ = pool.output_shape
    assert pool.get_input_shape_at(1) == (None, 8, 8, 1)
    assert pool.get_output_shape_at(0) == (None, 2, 2, 1)
    lines: list[str] = []
    Model([small, large], [pool.get_output_at(0), pool.get_output_at(1)]).summary(
        print_fn=lines.append
    )
    assert any(line.startswith("pool (MaxPooling2D)") and "multiple" in line for line in lines)


def test_generators_validation_dicts_and_class_weight_per_output():
    model = two_branch_model()
    model.compile("sgd", loss=["binary_crossentropy", "mse"], metrics=["mae"])
    assert model.metrics_names == ["loss", "cls_loss", "reg_loss", "cls_mae", "reg_mae"]

    def batches():
        while True:
            yield {"a": XA[:5], "b": XB[:5]}, {"cls": Y_BIN[:5], "reg": Y_REG[:5]}

    validation = ({"a": XA, "b": XB}, [Y_BIN, Y_REG])
    history = model.fit(
        batches(), steps_per_epoch=2, epochs=1, validation_data=validation, verbose=0
    )
    assert history.history["val_reg_mae"][0] == pytest.approx(
        model.evaluate(*validation, verbose=0)[4], rel=1e-5
    )
    weighted = model.evaluate([XA, XB], [Y_BIN, Y_REG], verbose=0)
    ones = [np.ones(20, "float32"), np.ones(20, "float32")]
    assert model.evaluate([XA, XB], [Y_BIN, Y_REG], sample_weight=ones, verbose=0) == weighted
    before = model.get_layer("cls").get_weights()[0].copy()
    model.fit([XA, XB], [Y_BIN, Y_REG], class_weight={"cls": {0: 1.0, 1: 3.0}}, verbose=0)
    assert not np.allclose(before, model.get_layer("cls").get_weights()[0])
    cls_pred, reg_pred = model.predict(batches(), steps=2)
    assert cls_pred.shape == (10, 1) and reg_pred.shape == (10, 2)
    assert model.predict_on_batch({"a": XA, "b": XB})[1].shape == (20, 2)
