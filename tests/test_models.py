"""Sequential: building, weights, config, data inputs, fine-tuning and bad-input errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl.callbacks import Callback
from minidl.layers import BatchNormalization, Dense, Dropout, Input
from minidl.models import Sequential, model_from_json
from minidl.optimizers import SGD
from tests.conftest import installed_backends

RNG = np.random.default_rng(0)
X4 = RNG.normal(size=(40, 4)).astype("float32")
Y_BINARY = (X4[:, 0] > 0).astype("int64")


def binary_model(name: str | None = None, **compile_kwargs) -> Sequential:
    minidl.set_random_seed(1)
    model = Sequential(
        [Dense(8, input_dim=4, activation="relu"), Dense(1, activation="sigmoid")], name=name
    )
    compile_kwargs.setdefault("metrics", ["accuracy"])
    model.compile(
        optimizer=compile_kwargs.pop("optimizer", "adam"),
        loss="binary_crossentropy",
        **compile_kwargs,
    )
    return model


def test_newcomer_example_trains_and_reports_metrics(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 60)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype("int64")
    minidl.set_random_seed(2)
    np.random.seed(2)  # the shuffling of fit, as in Keras
    model = Sequential()
    model.add(Dense(60, input_dim=60, activation="relu"))
    model.add(Dense(8, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=10, epochs=10, validation_split=0.2, verbose=0)
    scores = model.evaluate(x, y, verbose=0)
    assert model.metrics_names == ["loss", "accuracy"]
    assert isinstance(scores, list) and len(scores) == 2
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert scores[1] > 0.85
    assert model.predict(x[:3]).shape == (3, 1)


def test_evaluate_returns_a_float_without_metrics():
    model = binary_model(metrics=None)
    assert model.metrics_names == ["loss"]
    assert isinstance(model.evaluate(X4, Y_BINARY, verbose=0), float)
    assert isinstance(model.train_on_batch(X4, Y_BINARY), float)
    assert isinstance(model.test_on_batch(X4, Y_BINARY), float)


def test_add_builds_layers_as_soon_as_the_input_shape_is_known():
    model = Sequential()
    first = Dense(5, input_shape=(3,))
    model.add(first)
    assert first.built and model.built and model.output_shape == (None, 5)
    second = Dense(2)
    model.add(second)
    assert second.built and second.input_shape == (None, 5) and model.output_shape == (None, 2)


def test_model_without_input_shape_is_built_by_fit():
    model = Sequential([Dense(3), Dense(1)])
    assert not model.built and model.output_shape is None
    with pytest.raises(ValueError, match="not been built"):
        model.summary()
    model.compile("sgd", "mse")
    model.fit(X4, Y_BINARY, epochs=1, verbose=0)
    assert model.built and model.input_shape == (None, 4)


def test_input_layer_first_and_nowhere_else():
    model = Sequential()
    model.add(Input(shape=(4,)))
    model.add(Dense(2))
    assert model.input_shape == (None, 4) and len(model.layers) == 1
    with pytest.raises(ValueError, match="first element"):
        model.add(Input(shape=(2,)))


def test_add_rejects_non_layers_and_duplicate_names():
    model = Sequential([Dense(2, input_dim=3, name="same")])
    with pytest.raises(TypeError, match="instance of minidl.layers.Layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="unique names"):
        model.add(Dense(2, name="same"))
    assert len(model.layers) == 1


def test_add_of_an_incompatible_built_layer_leaves_the_model_unchanged():
    used = Dense(2, input_dim=7)
    Sequential([used])
    model = Sequential([Dense(3, input_dim=4)])
    with pytest.raises(ValueError, match="was built for inputs of shape"):
        model.add(used)
    assert len(model.layers) == 1


def test_pop_and_build():
    model = Sequential([Dense(4, name="a"), Dense(2, name="b")])
    model.build((None, 3))
    assert model.output_shape == (None, 2)
    assert model.pop().name == "b"
    assert model.output_shape == (None, 4)
    model.pop()
    with pytest.raises(TypeError, match="no layers"):
        model.pop()


def test_get_and_set_weights_check_every_shape_before_writing():
    model = binary_model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 8), (8,), (8, 1), (1,)]
    bad = [w + 1 for w in weights[:-1]] + [np.zeros(3)]
    with pytest.raises(ValueError, match=r"has shape \(1,\). Received: an array of shape \(3,\)"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match="expects 4 weight arrays"):
        model.set_weights(weights[:2])
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    model.set_weights([w + 1 for w in weights])
    np.testing.assert_allclose(model.get_weights()[0], weights[0] + 1)


def test_count_params_and_weight_lists():
    model = Sequential([Dense(8, input_dim=4), BatchNormalization(), Dense(1)])
    assert model.count_params() == 4 * 8 + 8 + 4 * 8 + 8 + 1
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 2


def test_config_and_json_round_trip_rebuild_the_same_model():
    model = binary_model(name="net")
    clone = Sequential.from_config(model.get_config())
    again = model_from_json(model.to_json())
    for copy in (clone, again):
        assert [type(layer) for layer in copy.layers] == [type(layer) for layer in model.layers]
        assert copy.input_shape == model.input_shape and copy.count_params() == 49
        copy.set_weights(model.get_weights())
        np.testing.assert_allclose(copy.predict(X4), model.predict(X4), rtol=1e-6)


def test_predict_in_batches_matches_one_batch():
    model = binary_model()
    full = model.predict_on_batch(X4)
    assert isinstance(full, np.ndarray)
    np.testing.assert_allclose(model.predict(X4, batch_size=7), full, rtol=1e-6)


def test_fit_is_deterministic_without_shuffle():
    results = []
    for _ in range(2):
        model = binary_model()
        model.fit(X4, Y_BINARY, epochs=2, batch_size=8, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_validation_split_keeps_the_last_samples():
    model = binary_model()
    history = model.fit(X4, Y_BINARY, epochs=1, validation_split=0.25, verbose=0)
    loss, _ = model.evaluate(X4[30:], Y_BINARY[30:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(loss, rel=1e-5)
    assert history.params["samples"] == 30


def test_validation_data_and_sample_weight():
    model = binary_model()
    weights = np.where(np.arange(40) < 20, 1.0, 0.0)
    history = model.fit(
        X4,
        Y_BINARY,
        sample_weight=weights,
        epochs=1,
        verbose=0,
        validation_data=(X4[:10], Y_BINARY[:10]),
    )
    assert "val_accuracy" in history.history
    assert model.test_on_batch(X4, Y_BINARY, sample_weight=np.zeros(40))[0] == 0.0


def test_class_weight_needs_every_class():
    model = binary_model()
    model.fit(X4, Y_BINARY, class_weight={0: 1.0, 1: 2.0}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="no weight for classes"):
        model.fit(X4, Y_BINARY, class_weight={0: 1.0}, epochs=1, verbose=0)


def test_freezing_then_recompiling_updates_only_trainable_layers(backend):
    model = binary_model()
    model.layers[0].trainable = False
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    before = model.get_weights()
    model.fit(X4, Y_BINARY, epochs=1, batch_size=8, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert not np.allclose(before[2], after[2])


def test_trainable_flags_are_read_at_compile_time():
    model = binary_model(optimizer="sgd")
    model.layers[0].trainable = False  # no effect until compile is called again
    before = model.get_weights()[0]
    model.fit(X4, Y_BINARY, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_weights()[0])


def test_batch_normalization_statistics_move_only_in_training(backend):
    model = Sequential([Dense(3, input_dim=4), BatchNormalization(momentum=0.5), Dense(1)])
    model.compile("sgd", "mse")
    moving_mean = model.layers[1].get_weights()[2].copy()
    model.predict(X4)
    model.evaluate(X4, Y_BINARY, verbose=0)
    np.testing.assert_array_equal(model.layers[1].get_weights()[2], moving_mean)
    model.fit(X4, Y_BINARY, epochs=1, verbose=0)
    assert not np.allclose(model.layers[1].get_weights()[2], moving_mean)


def test_dropout_is_only_active_in_training(backend):
    """Inference equals the network without dropout; training steps drop (and rescale) units.

    With a zero learning rate the weights never change, so the training loss differs from
    the inference loss, and between steps, only because dropout masks units while training.
    """
    model = Sequential([Dense(16, input_dim=4), Dropout(0.5), Dense(1)])
    model.compile(SGD(learning_rate=0.0), "mse")
    kernel, bias, head, head_bias = model.get_weights()
    without_dropout = (X4 @ kernel + bias) @ head + head_bias
    np.testing.assert_allclose(model.predict(X4, verbose=0), without_dropout, rtol=1e-5, atol=1e-5)
    y = np.zeros((len(X4), 1), "float32")
    inference_loss = model.test_on_batch(X4, y)
    np.testing.assert_allclose(inference_loss, np.mean(without_dropout**2), rtol=1e-5)
    training_losses = [float(model.train_on_batch(X4, y)) for _ in range(4)]
    assert all(abs(loss - inference_loss) > 1e-4 for loss in training_losses), training_losses
    assert len(set(training_losses)) > 1, training_losses  # a new mask each step
    for before, after in zip([kernel, bias, head, head_bias], model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_nested_model_acts_as_a_layer_and_can_be_frozen():
    minidl.set_random_seed(2)
    base = Sequential([Dense(6, input_dim=4, activation="relu"), Dense(5)], name="base")
    model = Sequential([base, Dense(1, activation="sigmoid", name="head")], name="outer")
    base.trainable = False
    model.compile("sgd", "binary_crossentropy")
    frozen = base.get_weights()
    model.fit(X4, Y_BINARY, epochs=1, verbose=0)
    for a, b in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith("base (Sequential)") for line in lines)
    assert "Non-trainable params: 65" in lines


def test_stop_training_flag_ends_fit_after_the_epoch():
    class StopAtSecondEpoch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = binary_model().fit(X4, Y_BINARY, epochs=5, verbose=0, callbacks=[StopAtSecondEpoch()])
    assert history.epoch == [0, 1]


# ----------------------------------------------------------------- other inputs
class TwoBatchSequence:
    def __init__(self):
        self.epochs_ended = 0

    def __len__(self):
        return 2

    def __getitem__(self, index):
        part = slice(index * 20, (index + 1) * 20)
        return X4[part], Y_BINARY[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_sequence_inputs_for_fit_evaluate_and_predict(backend):
    model = binary_model()
    sequence = TwoBatchSequence()
    history = model.fit(sequence, epochs=3, verbose=0, validation_data=TwoBatchSequence())
    assert sequence.epochs_ended == 3 and history.params["steps"] == 2
    assert len(history.history["val_loss"]) == 3
    loss, _ = model.evaluate(sequence, verbose=0)
    assert loss == pytest.approx(model.evaluate(X4, Y_BINARY, verbose=0)[0], rel=1e-5)
    assert model.predict(sequence).shape == (40, 1)


def batches_forever(batch_size=10):
    while True:
        for start in range(0, 40, batch_size):
            yield X4[start : start + batch_size], Y_BINARY[start : start + batch_size]


def test_generator_inputs_need_steps():
    model = binary_model()
    history = model.fit(batches_forever(), steps_per_epoch=3, epochs=2, verbose=0)
    assert history.params["steps"] == 3 and len(history.epoch) == 2
    assert len(model.evaluate(batches_forever(), steps=4, verbose=0)) == 2
    assert model.predict((x for x, _ in batches_forever()), steps=2).shape == (20, 1)
    assert model.fit_generator(batches_forever(), steps_per_epoch=1, verbose=0).epoch == [0]
    with pytest.raises(ValueError, match="pass `steps_per_epoch`"):
        model.fit(batches_forever(), epochs=1, verbose=0)


def test_an_exhausted_generator_stops_training_with_a_warning(caplog):
    model = binary_model()
    finite = ((X4[i : i + 10], Y_BINARY[i : i + 10]) for i in range(0, 40, 10))
    with caplog.at_level(logging.WARNING, logger="minidl"):
        history = model.fit(finite, steps_per_epoch=3, epochs=5, verbose=0)
    assert history.epoch == [0, 1] and "ran out of data" in caplog.text
    exact = ((X4[i : i + 10], Y_BINARY[i : i + 10]) for i in range(0, 40, 10))
    assert model.fit(exact, steps_per_epoch=2, epochs=5, verbose=0).epoch == [0, 1]


def test_deferred_build_from_a_generator_keeps_its_first_batch():
    model = Sequential([Dense(1)])
    model.compile("sgd", "mse")
    finite = ((X4[i : i + 10], Y_BINARY[i : i + 10]) for i in range(0, 40, 10))
    history = model.fit(finite, steps_per_epoch=4, epochs=1, verbose=0)
    assert history.epoch == [0] and model.input_shape == (None, 4)


# ------------------------------------------------------------------- bad input
def test_input_shape_mismatch_is_reported():
    model = binary_model()
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4\), found shape=\(40, 3\)"):
        model.fit(X4[:, :3], Y_BINARY, verbose=0)
    with pytest.raises(ValueError, match="incompatible"):
        model.predict(X4[:, :, None])


def test_integer_labels_for_categorical_crossentropy_get_a_hint():
    model = Sequential([Dense(3, input_dim=4, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    labels = np.arange(40) % 3
    with pytest.raises(ValueError, match="one-hot.*sparse_categorical_crossentropy"):
        model.fit(X4, labels, verbose=0)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(X4, labels[:, None], verbose=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(X4, labels, verbose=0)
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 2\]"):
        model.fit(X4, labels + 1, verbose=0)
    with pytest.raises(ValueError, match="looks one-hot"):
        model.fit(X4, np.eye(3)[labels], verbose=0)
    single = Sequential([Dense(1, input_dim=4, activation="softmax")])
    single.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match="binary_crossentropy"):
        single.fit(X4, Y_BINARY, verbose=0)


def test_arrays_of_different_lengths_are_rejected():
    with pytest.raises(ValueError, match="x sizes: 40, y sizes: 39"):
        binary_model().fit(X4, Y_BINARY[:-1], verbose=0)


def test_integer_labels_are_cast_but_text_labels_are_rejected():
    model = binary_model()
    model.fit(X4, Y_BINARY.astype("int32"), epochs=1, verbose=0)
    model.fit(X4, Y_BINARY.astype(bool), epochs=1, verbose=0)
    with pytest.raises(TypeError, match="must hold numbers.*LabelEncoder"):
        model.fit(X4, np.where(Y_BINARY, "M", "R"), verbose=0)


def test_training_before_compile_and_bad_arguments():
    model = Sequential([Dense(1, input_dim=4)])
    with pytest.raises(ValueError, match="compile"):
        model.fit(X4, Y_BINARY, verbose=0)
    with pytest.raises(ValueError, match="mean_squared_error"):
        model.compile("sgd", "no_such_loss")
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile("sgd")
    model.compile(SGD(learning_rate=0.1), "mse")
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X4, Y_BINARY, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X4, Y_BINARY, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="only supported for array"):
        model.fit(TwoBatchSequence(), validation_split=0.2, verbose=0)


@pytest.mark.skipif(len(installed_backends()) < 2, reason="needs a second backend")
def test_a_model_refuses_to_run_on_another_backend():
    model = binary_model()
    base = K.name()
    other = [name for name in installed_backends() if name != base][0]
    weights = model.get_weights()
    K.set_backend(other)
    with pytest.raises(ValueError, match=f"built with the '{base}' backend.*'{other}'"):
        model.predict(X4)
    with pytest.raises(ValueError, match=f"'{base}'"):
        model.fit(X4, Y_BINARY, verbose=0)
    with pytest.raises(ValueError, match="another backend"):
        Sequential([Dense(1, input_dim=4), model.layers[0]])
    for a, b in zip(weights, model.get_weights()):  # weights stay readable
        np.testing.assert_array_equal(a, b)
    clone = Sequential.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    result = clone.predict(X4)
    K.set_backend(base)
    np.testing.assert_allclose(result, model.predict(X4), rtol=1e-5, atol=1e-6)


def test_layer_weight_penalties_are_added_to_the_loss():
    from minidl.layers import Layer

    class PenalizedScale(Layer):
        """Multiplies by a weight and asks for an L2 penalty on it."""

        def build(self, input_shape):
            self.scale = self.add_weight("scale", (input_shape[-1],), initializer="ones")

        def call(self, inputs, training=False):
            return inputs * self.scale

        def regularization_losses(self):
            return [0.5 * K.sum(K.square(self.scale))]

    model = Sequential([PenalizedScale(input_shape=(4,)), Dense(1, kernel_initializer="zeros")])
    model.compile("sgd", "mse")
    penalty = 0.5 * 4  # 0.5 * sum(ones(4) ** 2)
    loss = model.test_on_batch(X4, np.zeros(40))
    assert loss == pytest.approx(penalty)
    outer = Sequential([model, Dense(1, kernel_initializer="zeros", kernel_regularizer="l1")])
    outer.compile("sgd", "mse")
    assert outer.test_on_batch(X4, np.zeros(40)) == pytest.approx(penalty)


def test_each_step_is_compiled_once_and_reused(monkeypatch):
    from minidl.engine import steps

    compiled = []

    class CountingBackend:
        def __getattr__(self, name):
            return getattr(K, name)

        def function(self, fn, input_specs, name=None):
            compiled.append(name)
            return K.function(fn, input_specs, name=name)

    monkeypatch.setattr(steps, "K", CountingBackend())
    model = binary_model()
    model.fit(X4, Y_BINARY, batch_size=4, epochs=3, verbose=0, validation_split=0.25)
    model.evaluate(X4, Y_BINARY, batch_size=4, verbose=0)
    model.predict(X4, batch_size=4)
    model.predict(X4[:5])
    assert sorted(name.rsplit("_", 1)[1] for name in compiled) == ["predict", "test", "train"]
    model.compile("sgd", "binary_crossentropy")
    model.fit(X4, Y_BINARY, epochs=1, verbose=0)
    model.predict(X4)
    assert len(compiled) == 4


def test_layers_added_after_compile_are_trained():
    model = binary_model(optimizer="sgd")
    model.pop()
    model.add(Dense(1, activation="sigmoid", name="new_head"))
    before = model.get_weights()
    model.fit(X4, Y_BINARY, epochs=1, verbose=0)
    assert not np.allclose(before[-2], model.get_weights()[-2])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad"])
def test_a_float64_model_trains_in_float64(backend, optimizer):
    model = Sequential(
        [
            Dense(4, input_dim=3, activation="tanh", dtype="float64"),
            Dense(2, activation="softmax", dtype="float64"),
        ]
    )
    model.compile(optimizer, "categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 3))
    y = np.eye(2)[np.arange(8) % 2]
    first = model.train_on_batch(x, y)
    assert np.isfinite(first) and model.train_on_batch(x, y) != first
    assert model.predict(x).dtype == np.float64
    assert all(w.dtype == np.float64 for w in model.get_weights())
