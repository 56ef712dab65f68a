"""Optimizers: golden values on a small quadratic, state, schedules, configs and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from minidl import backend as K
from minidl import optimizers
from minidl.layers import Dense

from .conftest import installed_backends

# The quadratic every case minimises: sum(SCALE * (w - TARGET) ** 2), starting from W0.
W0 = np.array([1.0, -2.0, 3.0])
TARGET = np.array([0.5, 0.5, 0.5])
SCALE = np.array([1.0, 2.0, 0.5])
STEPS = 3

CASES = {
    "sgd": ("SGD", {"learning_rate": 0.1}),
    "sgd_momentum_decay": ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "decay": 0.5}),
    "sgd_nesterov": ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    "sgd_clipnorm": ("SGD", {"learning_rate": 0.1, "clipnorm": 1.0}),
    "sgd_clipvalue": ("SGD", {"learning_rate": 0.1, "clipvalue": 0.5}),
    "adam": ("Adam", {"learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    "adam_decay": (
        "Adam",
        {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "decay": 0.1},
    ),
    "rmsprop": ("RMSprop", {"learning_rate": 0.1, "rho": 0.9, "epsilon": 1e-7}),
    "adagrad": ("Adagrad", {"learning_rate": 0.1, "epsilon": 1e-7}),
}

# Weights after STEPS steps. Produced by running `reference_steps` below (a float64 NumPy
# transcription of each published update rule, Keras 2 formulation) and printing with %.9g.
GOLDEN = {
    "sgd": [0.756, -0.04, 2.3225],
    "sgd_momentum_decay": [0.602, 1.51, 1.94375],
    "sgd_nesterov": [0.445824, 1.58324, 1.3183025],
    "sgd_clipnorm": [0.970498831, -1.71090477, 2.92549996],
    "sgd_clipvalue": [0.85, -1.85, 2.85],
    "adam": [0.704872, -1.70047401, 2.70047423],
    "adam_decay": [0.73816965, -1.72758788, 2.72779371],
    "rmsprop": [0.524435342, -1.29836161, 2.29836166],
    "adagrad": [0.790899193, -1.77493936, 2.77493937],
}


def reference_steps(name: str, config: dict, steps: int = STEPS) -> np.ndarray:
    """Plain NumPy transcription of the update rules, used to produce GOLDEN."""
    w, slot1, slot2 = W0.copy(), np.zeros(3), np.zeros(3)
    for it in range(steps):
        g = 2 * SCALE * (w - TARGET)
        if "clipnorm" in config:
            g = g * config["clipnorm"] / max(np.sqrt((g**2).sum()), config["clipnorm"])
        if "clipvalue" in config:
            g = np.clip(g, -config["clipvalue"], config["clipvalue"])
        lr = config["learning_rate"] / (1 + config.get("decay", 0.0) * it)
        if name == "SGD":
            momentum = config.get("momentum", 0.0)
            slot1 = momentum * slot1 - lr * g
            w = w + momentum * slot1 - lr * g if config.get("nesterov") else w + slot1
        elif name == "Adam":
            b1, b2, t = config["beta_1"], config["beta_2"], it + 1
            lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            slot1 = b1 * slot1 + (1 - b1) * g
            slot2 = b2 * slot2 + (1 - b2) * g**2
            w = w - lr_t * slot1 / (np.sqrt(slot2) + config["epsilon"])
        elif name == "RMSprop":
            slot1 = config["rho"] * slot1 + (1 - config["rho"]) * g**2
            w = w - lr * g / (np.sqrt(slot1) + config["epsilon"])
        else:  # Adagrad
            slot1 = slot1 + g**2
            w = w - lr * g / (np.sqrt(slot1) + config["epsilon"])
    return w


def test_reference_transcription_reproduces_golden_values():
    for case, (name, config) in CASES.items():
        np.testing.assert_allclose(reference_steps(name, config), GOLDEN[case], rtol=1e-8)


def run_all_cases(steps: int = STEPS) -> dict[str, np.ndarray]:
    """Run every case for ``steps`` steps on the current backend in one compiled step."""
    variables = {case: K.variable(W0.astype("float32")) for case in CASES}
    opts = {case: optimizers.get({"class_name": n, "config": c}) for case, (n, c) in CASES.items()}
    target = K.constant(TARGET.astype("float32"))
    scale = K.constant(SCALE.astype("float32"))

    def step(dummy):
        updates, losses = [], []
        for case, w in variables.items():
            loss = K.sum(scale * K.square(w - target))
            (grad,) = K.gradients(loss, [w])
            updates += opts[case].get_updates([w], [grad])
            losses.append(loss)
        return losses, updates

    compiled = K.function(step, [((None,), "float32")])
    for _ in range(steps):
        compiled(np.zeros(1, dtype="float32"))
    for case, opt in opts.items():
        assert int(K.get_value(opt.iterations)) == steps, case
    return {case: K.get_value(w) for case, w in variables.items()}


def test_golden_values_and_same_weights_on_every_backend():
    results = {}
    previous = K.name()
    try:
        for name in installed_backends():
            K.set_backend(name)
            results[name] = run_all_cases()
    finally:
        K.set_backend(previous)
    for name, weights in results.items():
        for case, golden in GOLDEN.items():
            np.testing.assert_allclose(weights[case], golden, rtol=1e-5, err_msg=f"{name} {case}")
    first = next(iter(results.values()))
    for weights in results.values():
        for case in CASES:
            np.testing.assert_allclose(weights[case], first[case], rtol=1e-6, atol=1e-7)


def train_dense(optimizer, x, y, steps, kernel, bias):
    """Fit a Dense layer with ``optimizer`` for ``steps`` steps; return its weights."""
    layer = Dense(2)
    layer.build_for((None, x.shape[1]))
    layer.set_weights([kernel, bias])

    def step(inputs, targets):
        loss = K.mean(K.square(layer(inputs) - targets))
        grads = K.gradients(loss, layer.trainable_weights)
        return [loss], optimizer.get_updates(layer.trainable_weights, grads)

    compiled = K.function(step, [((None, 3), "float32"), ((None, 2), "float32")])
    losses = [float(compiled(x, y)[0]) for _ in range(steps)]
    return layer.get_weights(), losses


def test_learning_rate_change_and_state_restore_without_recompiling(backend):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    kernel, bias = rng.normal(size=(3, 2)).astype("float32"), np.zeros(2, "float32")
    opt = optimizers.Adam(learning_rate=0.05)
    layer = Dense(2)
    layer.build_for((None, 3))
    layer.set_weights([kernel, bias])

    def step(inputs, targets):
        loss = K.mean(K.square(layer(inputs) - targets))
        grads = K.gradients(loss, layer.trainable_weights)
        return [loss], opt.get_updates(layer.trainable_weights, grads)

    compiled = K.function(step, [((None, 3), "float32"), ((None, 2), "float32")])
    losses = [float(compiled(x, y)[0]) for _ in range(3)]
    assert losses[2] < losses[0]
    K.set_value(opt.learning_rate, 0.0)
    frozen = layer.get_weights()
    compiled(x, y)
    for got, want in zip(layer.get_weights(), frozen):
        np.testing.assert_array_equal(got, want)
    assert int(K.get_value(opt.iterations)) == 4
    assert opt.get_config()["learning_rate"] == 0.0
    opt.lr = 0.05
    np.testing.assert_allclose(K.get_value(opt.lr), 0.05)
    assert opt.get_config()["learning_rate"] == 0.05

    # Restoring the state into a fresh optimizer (before its state exists) continues exactly.
    state, start = opt.get_weights(), layer.get_weights()
    assert [s.shape for s in state] == [(), (3, 2), (3, 2), (2,), (2,)]
    compiled(x, y)
    compiled(x, y)
    resumed = optimizers.Adam.from_config(opt.get_config())
    resumed.set_weights(state)
    got, _ = train_dense(resumed, x, y, 2, *start)
    for a, b in zip(got, layer.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(K.get_value(resumed.iterations)) == 6
    with pytest.raises(ValueError, match=r"Optimizer Adam has 5 state arrays. Received: 1 arrays"):
        resumed.set_weights(state[:1])
    with pytest.raises(ValueError, match=r"state of shape \(3, 2\).*shape \(2,\)"):
        resumed.set_weights([state[0], *state[3:], *state[1:3]])


def test_get_by_name_dict_and_instance_and_serialize_round_trip():
    for name, cls in (
        ("sgd", "SGD"),
        ("Adam", "Adam"),
        ("RMSprop", "RMSprop"),
        ("adagrad", "Adagrad"),
    ):
        assert type(optimizers.get(name)).__name__ == cls
    assert optimizers.get("sgd").get_config() == {
        "learning_rate": 0.01,
        "decay": 0.0,
        "momentum": 0.0,
        "nesterov": False,
    }
    adam = optimizers.get("adam").get_config()
    assert (adam["learning_rate"], adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (
        0.001,
        0.9,
        0.999,
        1e-7,
    )
    assert optimizers.get("rmsprop").get_config()["rho"] == 0.9
    assert optimizers.get("adagrad").get_config()["learning_rate"] == 0.01
    opt = optimizers.SGD(lr=0.5, momentum=0.8, nesterov=True, clipnorm=2.0)
    assert optimizers.get(opt) is opt
    spec = optimizers.serialize(opt)
    assert spec["class_name"] == "SGD" and spec["config"]["learning_rate"] == 0.5
    assert optimizers.get(spec).get_config() == opt.get_config()


def test_state_belongs_to_one_backend():
    names = installed_backends()
    if len(names) < 2:
        pytest.skip("needs two installed backends")
    previous = K.name()
    try:
        K.set_backend(names[0])
        opt = optimizers.SGD()
        opt.learning_rate  # noqa: B018 - creates the state on the first backend
        K.set_backend(names[1])
        with pytest.raises(ValueError, match=f"holds its state on the '{names[0]}' backend"):
            opt.get_updates([], [])
    finally:
        K.set_backend(previous)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optimizers.SGD(learning_rate=-1), r"`learning_rate` of optimizer SGD.*-1"),
        (lambda: optimizers.SGD(learning_rate="fast"), r"Received: learning_rate='fast'"),
        (lambda: optimizers.SGD(momentum=-0.5), r"`momentum`.*Received: momentum=-0.5"),
        (lambda: optimizers.SGD(decay=-1), r"`decay`"),
        (lambda: optimizers.SGD(clipnorm=0), r"`clipnorm`.*> 0"),
        (lambda: optimizers.SGD(clipvalue=-1), r"`clipvalue`"),
        (lambda: optimizers.Adam(beta_1=1.0), r"`beta_1` of optimizer Adam.*< 1"),
        (lambda: optimizers.Adam(beta_2=-0.1), r"`beta_2`"),
        (lambda: optimizers.Adam(epsilon=-1e-7), r"`epsilon`"),
        (lambda: optimizers.RMSprop(rho=1.5), r"`rho` of optimizer RMSprop"),
        (lambda: optimizers.Adagrad(epsilon=float("nan")), r"`epsilon` of optimizer Adagrad"),
        (
            lambda: optimizers.get("adamw"),
            r"Unknown optimizer 'adamw'. Valid names: adadelta, adagrad",
        ),
        (lambda: optimizers.get({"class_name": "Ftrl"}), r"Unknown optimizer 'Ftrl'"),
        (lambda: optimizers.SGD().get_updates([1], []), r"one gradient per parameter"),
    ],
)
def test_invalid_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_restoring_state_of_the_wrong_shape_is_rejected(backend):
    opt = optimizers.RMSprop()
    opt.set_weights([np.array(3), np.zeros((4, 4))])
    w = K.variable(np.zeros((2, 2), dtype="float32"))
    with pytest.raises(ValueError, match=r"slot of a parameter of shape \(2, 2\).*\(4, 4\)"):
        opt.get_updates([w], [w * 1.0])


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments passed to Adam"):
        optimizers.Adam(beta1=0.9)
    with pytest.raises(TypeError, match=r"must be a name, a dict or an Optimizer"):
        optimizers.get(3)
