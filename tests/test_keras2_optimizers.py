"""Keras 2 optimizers: every update rule against Keras 2.2.4's formulas written out in NumPy.

Each case minimises ``sum(SCALE_A * (a - TA)**2) + sum(SCALE_B * (b - TB)**2)`` over a matrix
``a`` and a vector ``b`` for a few steps on every backend; the reference below is a float64
transcription of the formulas in Keras 2.2.4's ``keras/optimizers.py`` (epsilon defaults to
``K.epsilon() = 1e-7``; time decay ``lr / (1 + decay * iterations)``; ``clipnorm`` scales all
gradients by ``clipnorm / max(global_norm, clipnorm)``; ``clipvalue`` clips elements).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from minidl import backend as K
from minidl import constraints, optimizers

RNG = np.random.default_rng(7)
A0, TA, SCALE_A = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2)), RNG.uniform(0.5, 2, (3, 2))
B0, TB, SCALE_B = RNG.normal(size=4), RNG.normal(size=4), RNG.uniform(0.5, 2, 4)
STEPS = 4
EPS = 1e-7

CASES = {
    "sgd_momentum_decay": ("SGD", {"lr": 0.1, "momentum": 0.8, "decay": 0.3}),
    "sgd_nesterov": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "rmsprop": ("RMSprop", {"lr": 0.01}),
    "adagrad": ("Adagrad", {"lr": 0.1}),
    "adadelta": ("Adadelta", {}),
    "adadelta_decay": ("Adadelta", {"lr": 0.5, "rho": 0.9, "decay": 0.2}),
    "adam": ("Adam", {"lr": 0.05}),
    "adam_amsgrad": ("Adam", {"lr": 0.05, "beta_1": 0.5, "amsgrad": True}),
    "adamax": ("Adamax", {}),
    "adamax_decay": ("Adamax", {"lr": 0.05, "beta_2": 0.5, "decay": 0.1}),
    "nadam": ("Nadam", {}),
    "nadam_big_decay": ("Nadam", {"lr": 0.05, "schedule_decay": 0.5}),
    "sgd_clipnorm_global": ("SGD", {"lr": 0.1, "clipnorm": 0.5}),
    "adam_clipvalue": ("Adam", {"lr": 0.05, "clipvalue": 0.3}),
}


def grads_of(params):
    a, b = params
    return [2 * SCALE_A * (a - TA), 2 * SCALE_B * (b - TB)]


def keras2_reference(name: str, config: dict, steps: int = STEPS) -> list[np.ndarray]:
    """Keras 2.2.4's update rules in float64 NumPy, both parameters updated in one step."""
    params = [A0.copy(), B0.copy()]
    zeros = [np.zeros_like(p) for p in params]
    s1, s2, s3 = [z.copy() for z in zeros], [z.copy() for z in zeros], [z.copy() for z in zeros]
    m_schedule = 1.0
    defaults = {"SGD": 0.01, "RMSprop": 0.001, "Adagrad": 0.01, "Adadelta": 1.0}
    lr0 = config.get("lr", defaults.get(name, 0.002 if name in ("Adamax", "Nadam") else 0.001))
    beta_1, beta_2 = config.get("beta_1", 0.9), config.get("beta_2", 0.999)
    for it in range(steps):
        grads = grads_of(params)
        if "clipnorm" in config:
            norm = np.sqrt(sum((g**2).sum() for g in grads))
            c = config["clipnorm"]
            grads = [g * c / norm if norm >= c else g for g in grads]
        if "clipvalue" in config:
            grads = [np.clip(g, -config["clipvalue"], config["clipvalue"]) for g in grads]
        lr = lr0 * (1.0 / (1.0 + config.get("decay", 0.0) * it))
        t = it + 1
        if name == "Nadam":
            sd = config.get("schedule_decay", 0.004)
            mu_t = beta_1 * (1.0 - 0.5 * 0.96 ** (t * sd))
            mu_t1 = beta_1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * sd))
            m_schedule_new = m_schedule * mu_t
            m_schedule_next = m_schedule * mu_t * mu_t1
            m_schedule = m_schedule_new
        for k, (p, g) in enumerate(zip(params, grads)):
            if name == "SGD":
                mom = config.get("momentum", 0.0)
                s1[k] = mom * s1[k] - lr * g
                if config.get("nesterov"):
                    params[k] = p + mom * s1[k] - lr * g
                else:
                    params[k] = p + s1[k]
            elif name == "RMSprop":
                s1[k] = 0.9 * s1[k] + 0.1 * g**2
                params[k] = p - lr * g / (np.sqrt(s1[k]) + EPS)
            elif name == "Adagrad":
                s1[k] = s1[k] + g**2
                params[k] = p - lr * g / (np.sqrt(s1[k]) + EPS)
            elif name == "Adadelta":
                rho = config.get("rho", 0.95)
                s1[k] = rho * s1[k] + (1 - rho) * g**2
                update = g * np.sqrt(s2[k] + EPS) / np.sqrt(s1[k] + EPS)
                params[k] = p - lr * update
                s2[k] = rho * s2[k] + (1 - rho) * update**2
            elif name == "Adam":
                lr_t = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
                s1[k] = beta_1 * s1[k] + (1 - beta_1) * g
                s2[k] = beta_2 * s2[k] + (1 - beta_2) * g**2
                if config.get("amsgrad"):
                    s3[k] = np.maximum(s3[k], s2[k])
                    params[k] = p - lr_t * s1[k] / (np.sqrt(s3[k]) + EPS)
                else:
                    params[k] = p - lr_t * s1[k] / (np.sqrt(s2[k]) + EPS)
            elif name == "Adamax":
                lr_t = lr / (1 - beta_1**t)
                s1[k] = beta_1 * s1[k] + (1 - beta_1) * g
                s2[k] = np.maximum(beta_2 * s2[k], np.abs(g))
                params[k] = p - lr_t * s1[k] / (s2[k] + EPS)
            elif name == "Nadam":
                g_prime = g / (1 - m_schedule_new)
                s1[k] = beta_1 * s1[k] + (1 - beta_1) * g
                s2[k] = beta_2 * s2[k] + (1 - beta_2) * g**2
                m_t_prime = s1[k] / (1 - m_schedule_next)
                v_t_prime = s2[k] / (1 - beta_2**t)
                m_t_bar = (1 - mu_t) * g_prime + mu_t1 * m_t_prime
                params[k] = p - lr * m_t_bar / (np.sqrt(v_t_prime) + EPS)
    return params


def run_case(name, config, dtype="float32", steps=STEPS, opt=None, start=(A0, B0)):
    a = K.variable(start[0].astype(dtype), dtype=dtype)
    b = K.variable(start[1].astype(dtype), dtype=dtype)
    if opt is None:
        opt = optimizers.deserialize({"class_name": name, "config": config})
    consts = [K.constant(v.astype(dtype), dtype=dtype) for v in (TA, SCALE_A, TB, SCALE_B)]

    def step(dummy):
        ta, sa, tb, sb = consts
        loss = K.sum(sa * K.square(a - ta)) + K.sum(sb * K.square(b - tb))
        grads = K.gradients(loss, [a, b])
        return [loss], opt.get_updates([a, b], grads)

    compiled = K.function(step, [((None,), "float32")])
    for _ in range(steps):
        compiled(np.zeros(1, "float32"))
    return [K.get_value(a), K.get_value(b)], opt


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_rules_match_keras_2_formulas(backend, case):
    name, config = CASES[case]
    want = keras2_reference(name, config)
    got, opt = run_case(name, config)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5, err_msg=case)
    moved = max(np.abs(w - p0).max() for w, p0 in zip(want, (A0, B0)))
    assert moved > 1e-3, f"{case}: the reference barely moves; the test could not fail"
    assert int(K.get_value(opt.iterations)) == STEPS


@pytest.mark.parametrize("case", ["nadam", "adam_amsgrad", "adadelta_decay"])
def test_float64_params_follow_the_same_rule(backend, case):
    name, config = CASES[case]
    got, _ = run_case(name, config, dtype="float64")
    for g, w in zip(got, keras2_reference(name, config)):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)  # lr is a float32 variable


def test_clipnorm_is_global_not_per_tensor():
    """Per-tensor clipping would leave the smaller gradient alone; the global rule scales it."""
    config = {"lr": 0.1, "clipnorm": 7.0}
    got, _ = run_case("SGD", config, steps=1)
    g = grads_of([A0, B0])
    norms = [np.sqrt((x**2).sum()) for x in g]
    assert norms[0] < 7.0 < np.sqrt(sum(n**2 for n in norms)), "case must separate the rules"
    per_tensor_a = A0 - 0.1 * g[0]
    assert not np.allclose(got[0], per_tensor_a, rtol=1e-3)
    np.testing.assert_allclose(got[0], keras2_reference("SGD", config, steps=1)[0], rtol=1e-5)


def test_constraints_project_the_updated_value(backend):
    w = K.variable(np.array([[3.0, 0.1], [4.0, -0.2]], dtype="float32"))
    opt = optimizers.SGD(lr=0.0)

    def step(dummy):
        (grad,) = K.gradients(K.sum(w), [w])
        return [], opt.get_updates([w], [grad], constraints=[constraints.max_norm(1.0)])

    K.function(step, [((None,), "float32")])(np.zeros(1, "float32"))
    norms = np.sqrt((K.get_value(w) ** 2).sum(axis=0))
    np.testing.assert_allclose(norms, [1.0, np.sqrt(0.05)], rtol=1e-5)


def test_nadam_state_order_and_restore(backend):
    config = {"lr": 0.05}
    params, opt = run_case("Nadam", config, steps=2)
    state = opt.get_weights()
    assert [s.shape for s in state] == [(), (), (3, 2), (3, 2), (4,), (4,)]
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in (1, 2)]
    np.testing.assert_allclose(state[1], mu[0] * mu[1], rtol=1e-6)
    resumed = optimizers.Nadam.from_config(opt.get_config())
    resumed.set_weights(state)
    got, _ = run_case("Nadam", config, steps=2, opt=resumed, start=params)
    assert int(K.get_value(resumed.iterations)) == 4
    for g, w in zip(got, keras2_reference("Nadam", config, steps=4)):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5)


def test_lowercase_aliases_get_serialize_deserialize():
    for alias, cls in (
        ("sgd", "SGD"),
        ("rmsprop", "RMSprop"),
        ("adagrad", "Adagrad"),
        ("adadelta", "Adadelta"),
        ("adam", "Adam"),
        ("adamax", "Adamax"),
        ("nadam", "Nadam"),
    ):
        assert getattr(optimizers, alias) is getattr(optimizers, cls)
        opt = optimizers.get(alias)
        assert type(opt).__name__ == cls
        again = optimizers.deserialize(optimizers.serialize(opt))
        assert type(again) is type(opt) and again.get_config() == opt.get_config()
    amsgrad = optimizers.get({"class_name": "Adam", "config": {"amsgrad": True, "lr": 0.3}})
    assert amsgrad.amsgrad and amsgrad.get_config()["learning_rate"] == 0.3
    assert optimizers.Adadelta().get_config()["learning_rate"] == 1.0
    assert optimizers.Adamax(epsilon=None).epsilon == EPS
    with pytest.raises(ValueError, match="Unknown optimizer 'adamw'"):
        optimizers.get("adamw")
    with pytest.raises(TypeError, match="Unrecognized keyword arguments"):
        optimizers.Nadam(momentum=0.9)


def test_keras_3_optimizer_configs():
    keras3 = {
        "class_name": "Adam",
        "config": {
            "name": "adam",
            "learning_rate": 0.01,
            "weight_decay": None,
            "clipnorm": None,
            "global_clipnorm": 2.0,
            "clipvalue": None,
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
    }
    with pytest.warns(UserWarning, match="name, ema_momentum"):
        opt = optimizers.deserialize(keras3)
    assert opt.clipnorm == 2.0 and opt.get_config()["learning_rate"] == 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"`weight_decay` is not supported.*0.004"):
            optimizers.deserialize(
                {"class_name": "Adam", "config": {**keras3["config"], "weight_decay": 0.004}}
            )
