"""Optimizers that return their updates as data (Lasagne style), with Keras 2's update rules.

``get_updates(params, grads)`` returns ``[(variable, new_value), ...]`` for the compiled
training step to apply. The learning rate, the iteration counter and every slot (momentum,
moving averages) are backend variables created on the first ``get_updates``, so changing
``optimizer.learning_rate`` with ``K.set_value`` takes effect without recompiling.

SGD, RMSprop, Adagrad, Adadelta, Adam (with ``amsgrad``), Adamax and Nadam follow Keras
2.2.4's formulas; the lower-case Keras 2 aliases (``optimizers.adam`` ...) name the same
classes. ``clipnorm`` rescales all gradients together when their global L2 norm exceeds it
(Keras 2's rule); ``clipvalue`` clips each element.

>>> from minidl import optimizers
>>> opt = optimizers.get("adam")
>>> type(opt).__name__, opt.get_config()["learning_rate"]
('Adam', 0.001)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl import backend as K


def _epsilon(owner: str, epsilon: Any) -> float:
    """Keras 2's ``epsilon=None`` means ``K.epsilon()`` (1e-7)."""
    return 1e-7 if epsilon is None else _check_number(owner, "epsilon", epsilon, 0.0)


def _check_number(
    owner: str,
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float after checking it lies in the allowed interval."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    too_low = number < low if low_inclusive else number <= low
    if math.isnan(number) or too_low or (high is not None and number >= high):
        bound = f"{'>=' if low_inclusive else '>'} {low}"
        if high is not None:
            bound += f" and < {high}"
        raise ValueError(
            f"Invalid value for argument `{name}` of optimizer {owner}: expected a number "
            f"{bound}. Received: {name}={value!r}"
        )
    return number


class Optimizer:
    """Base class: learning rate, time decay, gradient clipping and state bookkeeping.

    Args:
        learning_rate: step size (``lr`` is accepted as its legacy name).
        decay: time-based decay, ``lr_t = learning_rate / (1 + decay * iterations)``.
        clipnorm: when the global L2 norm of all gradients together exceeds this value,
            scale every gradient by ``clipnorm / norm`` (Keras 2's rule).
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
    """

    slot_names: tuple[str, ...] = ()
    # Scalar state shared by all parameters (name, initial value), kept after ``iterations``.
    global_state: tuple[tuple[str, float], ...] = ()

    def __init__(
        self,
        learning_rate: float = 0.01,
        decay: float = 0.0,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        if "lr" in kwargs:
            learning_rate = kwargs.pop("lr")
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {owner}: {kwargs}")
        self._initial_learning_rate = _check_number(owner, "learning_rate", learning_rate, 0.0)
        self.decay = _check_number(owner, "decay", decay, 0.0)
        self.clipnorm = (
            None
            if clipnorm is None
            else _check_number(owner, "clipnorm", clipnorm, 0.0, low_inclusive=False)
        )
        self.clipvalue = (
            None
            if clipvalue is None
            else _check_number(owner, "clipvalue", clipvalue, 0.0, low_inclusive=False)
        )
        self.name = owner
        self._backend: str | None = None
        self._learning_rate: Any = None
        self._iterations: Any = None
        self._globals: list[Any] = []
        self._slots: dict[int, tuple[Any, list[Any]]] = {}
        self._pending_weights: list[np.ndarray] | None = None

    # ----------------------------------------------------------------------- state
    def _ensure_state(self) -> None:
        """Create the learning-rate and iteration variables on the current backend."""
        if self._backend is None:
            self._backend = K.name()
            self._learning_rate = K.variable(
                np.asarray(self._initial_learning_rate, dtype=K.floatx()),
                name=f"{self.name}/learning_rate",
            )
            iterations = np.asarray(0, dtype="int64")
            if self._pending_weights:
                iterations = np.asarray(self._pending_weights.pop(0), dtype="int64")
            self._iterations = K.variable(iterations, name=f"{self.name}/iterations")
            self._globals = []
            for state_name, initial in self.global_state:
                if self._pending_weights:
                    initial = self._pending_weights.pop(0)
                self._globals.append(
                    K.variable(
                        np.asarray(initial, dtype=K.floatx()), name=f"{self.name}/{state_name}"
                    )
                )
        elif self._backend != K.name():
            raise ValueError(
                f"Optimizer {self.name} holds its state on the {self._backend!r} backend and "
                f"cannot be used on {K.name()!r}; create a new optimizer. "
                f"Received: current backend {K.name()!r}"
            )

    @property
    def learning_rate(self) -> Any:
        """The learning rate as a backend variable (``K.set_value`` changes it)."""
        self._ensure_state()
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        number = _check_number(self.name, "learning_rate", value, 0.0)
        if self._backend is None:
            self._initial_learning_rate = number
        else:
            K.set_value(self._learning_rate, np.asarray(number, dtype=K.floatx()))

    lr = learning_rate

    @property
    def iterations(self) -> Any:
        """Number of updates applied so far, as an int64 backend variable."""
        self._ensure_state()
        return self._iterations

    def _initial_slot(self, param: Any) -> np.ndarray:
        """Zeros shaped like ``param``, or the next restored array if ``set_weights`` left one."""
        shape, dtype = tuple(K.int_shape(param)), K.dtype(param)
        if not self._pending_weights:
            return np.zeros(shape, dtype=dtype)
        value = np.asarray(self._pending_weights.pop(0), dtype=dtype)
        if value.shape != shape:
            raise ValueError(
                f"Optimizer {self.name} cannot restore a slot of a parameter of shape {shape}. "
                f"Received: an array of shape {value.shape}"
            )
        return value

    def _slots_for(self, params: Sequence[Any]) -> list[list[Any]]:
        """Slot variables of each parameter, created the first time the parameter is seen."""
        slots = []
        for param in params:
            if id(param) not in self._slots:
                index = len(self._slots)
                self._slots[id(param)] = (
                    param,  # held so that its id cannot be reused by another variable
                    [
                        K.variable(
                            self._initial_slot(param),
                            dtype=K.dtype(param),
                            name=f"{self.name}/{s}_{index}",
                        )
                        for s in self.slot_names
                    ],
                )
            slots.append(self._slots[id(param)][1])
        return slots

    @property
    def weights(self) -> list[Any]:
        """State variables in a fixed order: iterations, shared scalars, each parameter's slots."""
        if self._backend is None:
            return []
        slots = [v for _, param_slots in self._slots.values() for v in param_slots]
        return [self._iterations, *self._globals, *slots]

    def get_weights(self) -> list[np.ndarray]:
        """State as NumPy arrays (empty before the first ``get_updates``)."""
        return [K.get_value(v) for v in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Restore state saved by ``get_weights``.

        Before the first ``get_updates`` the arrays are kept and become the initial values of
        the state variables when they are created.
        """
        arrays = [np.asarray(w) for w in weights]
        if self._backend is None:
            self._pending_weights = arrays
            return
        variables = self.weights
        head = 1 + len(self._globals)
        if not self._slots and self.slot_names and len(arrays) > head:
            K.set_value(self._iterations, np.asarray(arrays[0], dtype="int64"))
            for variable, array in zip(self._globals, arrays[1:head]):
                K.set_value(variable, np.asarray(array, dtype=K.dtype(variable)))
            self._pending_weights = arrays[head:]
            return
        if len(arrays) != len(variables):
            raise ValueError(
                f"Optimizer {self.name} has {len(variables)} state arrays. "
                f"Received: {len(arrays)} arrays."
            )
        for variable, array in zip(variables, arrays):
            if tuple(array.shape) != tuple(K.int_shape(variable)):
                raise ValueError(
                    f"Optimizer {self.name} state of shape {K.int_shape(variable)} cannot take "
                    f"the given array. Received: an array of shape {array.shape}"
                )
        for variable, array in zip(variables, arrays):
            K.set_value(variable, array)

    # --------------------------------------------------------------------- updates
    def clip_gradients(self, grads: Sequence[Any]) -> list[Any]:
        """Apply ``clipnorm`` (to the global norm of all ``grads``) and then ``clipvalue``."""
        grads = list(grads)
        if self.clipnorm is not None and grads:
            squares = None
            wide = any(K.dtype(g) == "float64" for g in grads)
            for grad in grads:  # the global norm is summed in float32 (or the widest dtype)
                term = K.sum(K.square(K.cast(grad, "float64") if wide else grad))
                squares = term if squares is None else squares + term
            norm = K.sqrt(squares)
            factor = self.clipnorm / K.maximum(norm, self.clipnorm)
            grads = [g * _as_dtype(factor, K.dtype(g)) for g in grads]
        if self.clipvalue is not None:
            grads = [K.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def get_updates(
        self,
        params: Sequence[Any],
        grads: Sequence[Any],
        constraints: Sequence[Callable[[Any], Any] | None] | None = None,
    ) -> list[tuple[Any, Any]]:
        """Return ``(variable, new_value)`` pairs for one step of this optimizer.

        ``constraints`` (one callable or None per parameter) project each new value, as
        Keras 2 applies ``kernel_constraint`` after the update.
        """
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(
                f"Optimizer {self.name} needs one gradient per parameter. "
                f"Received: {len(params)} parameters and {len(grads)} gradients."
            )
        constraints = [None] * len(params) if constraints is None else list(constraints)
        if len(constraints) != len(params):
            raise ValueError(
                f"Optimizer {self.name} needs one constraint (or None) per parameter. "
                f"Received: {len(params)} parameters and {len(constraints)} constraints."
            )
        self._ensure_state()
        lr = self._learning_rate
        if self.decay > 0:
            lr = lr / (1.0 + self.decay * K.cast(self._iterations, K.floatx()))
        step = K.cast(self._iterations + 1, K.floatx())
        updates: list[tuple[Any, Any]] = [(self._iterations, self._iterations + 1)]
        updates.extend(self.shared_updates(step))
        clipped = self.clip_gradients(grads)
        for param, grad, slots, constraint in zip(
            params, clipped, self._slots_for(params), constraints
        ):
            dtype = K.dtype(param)  # float64 weights get float64 hyper-parameters
            new_param, slot_updates = self.update_rule(
                param, grad, slots, _as_dtype(lr, dtype), _as_dtype(step, dtype)
            )
            if constraint is not None:
                new_param = constraint(new_param)
            updates.append((param, new_param))
            updates.extend(slot_updates)
        return updates

    def shared_updates(self, step: Any) -> list[tuple[Any, Any]]:
        """Updates of the ``global_state`` scalars for this step (computed once per step)."""
        return []

    def update_rule(
        self, param: Any, grad: Any, slots: list[Any], lr: Any, step: Any
    ) -> tuple[Any, list[tuple[Any, Any]]]:
        """New value of ``param`` and of its slots; ``step`` counts from 1 (a float tensor)."""
        return param - lr * grad, []

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this optimizer (the current learning rate)."""
        if self._backend is None:
            learning_rate = self._initial_learning_rate
        else:
            # the shortest decimal that reads back as the same float32 (0.001, not 0.0010000000475)
            learning_rate = float(str(np.float32(K.get_value(self._learning_rate))))
        config: dict[str, Any] = {"learning_rate": learning_rate, "decay": self.decay}
        if self.clipnorm is not None:
            config["clipnorm"] = self.clipnorm
        if self.clipvalue is not None:
            config["clipvalue"] = self.clipvalue
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuild an optimizer from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{self.name} {self.get_config()}>"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``v = momentum * v - lr * g``; ``p += v`` (or ``p += momentum * v - lr * g`` with Nesterov).
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()

    def update_rule(self, param, grad, slots, lr, step):
        if not slots:
            return param - lr * grad, []
        (velocity,) = slots
        new_velocity = self.momentum * velocity - lr * grad
        if self.nesterov:
            return param + self.momentum * new_velocity - lr * grad, [(velocity, new_velocity)]
        return param + new_velocity, [(velocity, new_velocity)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


def _as_dtype(x: Any, dtype: str) -> Any:
    return x if K.dtype(x) == dtype else K.cast(x, dtype)


def _power(base: float, exponent: Any) -> Any:
    """``base ** exponent`` for a Python float base in [0, 1) and a positive tensor exponent."""
    if base == 0.0:
        return exponent * 0.0
    return K.exp(exponent * math.log(base))


def _moving_average(decay: float, average: Any, value: Any) -> Any:
    """``decay * average + (1 - decay) * value``: the running averages of the adaptive rules."""
    return decay * average + (1.0 - decay) * value


def _check_betas(owner: str, beta_1: Any, beta_2: Any, epsilon: Any) -> tuple[float, float, float]:
    """``beta_1``, ``beta_2`` (each in [0, 1]) and ``epsilon`` of the Adam family, checked."""
    return (
        _check_number(owner, "beta_1", beta_1, 0.0, 1.0),
        _check_number(owner, "beta_2", beta_2, 0.0, 1.0),
        _epsilon(owner, epsilon),
    )


def _betas_config(optimizer: Any) -> dict[str, float]:
    """The config keys the Adam family shares."""
    return {"beta_1": optimizer.beta_1, "beta_2": optimizer.beta_2, "epsilon": optimizer.epsilon}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with the bias correction folded into the step size.

    ``lr_t = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``;
    ``p -= lr_t * m_t / (sqrt(v_t) + epsilon)`` (the Keras 2 formulation). With
    ``amsgrad=True`` (Reddi et al., 2018) the denominator uses ``vhat_t = max(vhat, v_t)``.
    """

    slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        decay: float = 0.0,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas("Adam", beta_1, beta_2, epsilon)
        self.amsgrad = bool(amsgrad)
        self.slot_names = ("m", "v", "vhat") if self.amsgrad else ("m", "v")

    def update_rule(self, param, grad, slots, lr, step):
        m, v = slots[:2]
        lr_t = lr * K.sqrt(1.0 - _power(self.beta_2, step)) / (1.0 - _power(self.beta_1, step))
        m_t = _moving_average(self.beta_1, m, grad)
        v_t = _moving_average(self.beta_2, v, K.square(grad))
        if not self.amsgrad:
            new_param = param - lr_t * m_t / (K.sqrt(v_t) + self.epsilon)
            return new_param, [(m, m_t), (v, v_t)]
        vhat_t = K.maximum(slots[2], v_t)
        new_param = param - lr_t * m_t / (K.sqrt(vhat_t) + self.epsilon)
        return new_param, [(m, m_t), (v, v_t), (slots[2], vhat_t)]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **_betas_config(self),
            "amsgrad": self.amsgrad,
        }


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton): divide by a moving root mean square of the gradients.

    ``a = rho * a + (1 - rho) * g**2``; ``p -= lr * g / (sqrt(a) + epsilon)``.
    """

    slot_names = ("rms",)

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        epsilon: float | None = 1e-7,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.rho = _check_number("RMSprop", "rho", rho, 0.0, 1.0)
        self.epsilon = _epsilon("RMSprop", epsilon)

    def update_rule(self, param, grad, slots, lr, step):
        (accumulator,) = slots
        new_accumulator = _moving_average(self.rho, accumulator, K.square(grad))
        new_param = param - lr * grad / (K.sqrt(new_accumulator) + self.epsilon)
        return new_param, [(accumulator, new_accumulator)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): divide by the root of the summed squared gradients.

    ``a += g**2``; ``p -= lr * g / (sqrt(a) + epsilon)``.
    """

    slot_names = ("accumulator",)

    def __init__(
        self,
        learning_rate: float = 0.01,
        epsilon: float | None = 1e-7,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.epsilon = _epsilon("Adagrad", epsilon)

    def update_rule(self, param, grad, slots, lr, step):
        (accumulator,) = slots
        new_accumulator = accumulator + K.square(grad)
        new_param = param - lr * grad / (K.sqrt(new_accumulator) + self.epsilon)
        return new_param, [(accumulator, new_accumulator)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): step sizes from moving averages of gradients and updates.

    ``a = rho * a + (1 - rho) * g**2``; ``u = g * sqrt(d + epsilon) / sqrt(a + epsilon)``;
    ``p -= lr * u``; ``d = rho * d + (1 - rho) * u**2``.
    """

    slot_names = ("accumulator", "delta_accumulator")

    def __init__(
        self,
        learning_rate: float = 1.0,
        rho: float = 0.95,
        epsilon: float | None = 1e-7,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.rho = _check_number("Adadelta", "rho", rho, 0.0, 1.0)
        self.epsilon = _epsilon("Adadelta", epsilon)

    def update_rule(self, param, grad, slots, lr, step):
        accumulator, delta_accumulator = slots
        new_accumulator = _moving_average(self.rho, accumulator, K.square(grad))
        update = (
            grad * K.sqrt(delta_accumulator + self.epsilon) / K.sqrt(new_accumulator + self.epsilon)
        )
        new_delta = _moving_average(self.rho, delta_accumulator, K.square(update))
        return param - lr * update, [(accumulator, new_accumulator), (delta_accumulator, new_delta)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2015, section 7): Adam with the infinity norm.

    ``m = beta_1 * m + (1 - beta_1) * g``; ``u = max(beta_2 * u, |g|)``;
    ``p -= lr / (1 - beta_1**t) * m / (u + epsilon)``.
    """

    slot_names = ("m", "u")

    def __init__(
        self,
        learning_rate: float = 0.002,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas("Adamax", beta_1, beta_2, epsilon)

    def update_rule(self, param, grad, slots, lr, step):
        m, u = slots
        lr_t = lr / (1.0 - _power(self.beta_1, step))
        m_t = _moving_average(self.beta_1, m, grad)
        u_t = K.maximum(self.beta_2 * u, K.abs(grad))
        return param - lr_t * m_t / (u_t + self.epsilon), [(m, m_t), (u, u_t)]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **_betas_config(self),
        }


class Nadam(Optimizer):
    """Nesterov Adam (Dozat, 2016) with Keras 2's momentum schedule.

    ``mu_t = beta_1 * (1 - 0.5 * 0.96**(t * schedule_decay))``; the product of the
    ``mu`` so far is the shared state ``m_schedule``;
    ``m_bar = (1 - mu_t) * g / (1 - prod_t) + mu_{t+1} * m_t / (1 - prod_t * mu_{t+1})``;
    ``p -= lr * m_bar / (sqrt(v_t / (1 - beta_2**t)) + epsilon)``.
    """

    slot_names = ("m", "v")
    global_state = (("m_schedule", 1.0),)

    def __init__(
        self,
        learning_rate: float = 0.002,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        schedule_decay: float = 0.004,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas("Nadam", beta_1, beta_2, epsilon)
        self.schedule_decay = _check_number("Nadam", "schedule_decay", schedule_decay, 0.0)
        self._step_terms: tuple[Any, Any, Any, Any] | None = None

    def _momentum_cache(self, step: Any) -> Any:
        return self.beta_1 * (1.0 - 0.5 * _power(0.96, step * self.schedule_decay))

    def shared_updates(self, step):
        (m_schedule,) = self._globals
        mu_t = self._momentum_cache(step)
        mu_next = self._momentum_cache(step + 1.0)
        schedule_new = m_schedule * mu_t
        self._step_terms = (mu_t, mu_next, schedule_new, schedule_new * mu_next)
        return [(m_schedule, schedule_new)]

    def update_rule(self, param, grad, slots, lr, step):
        m, v = slots
        assert self._step_terms is not None  # set by shared_updates in get_updates
        dtype = K.dtype(param)
        mu_t, mu_next, schedule_new, schedule_next = (
            _as_dtype(term, dtype) for term in self._step_terms
        )
        g_prime = grad / (1.0 - schedule_new)
        m_t = _moving_average(self.beta_1, m, grad)
        v_t = _moving_average(self.beta_2, v, K.square(grad))
        m_t_prime = m_t / (1.0 - schedule_next)
        v_t_prime = v_t / (1.0 - _power(self.beta_2, step))
        m_t_bar = (1.0 - mu_t) * g_prime + mu_next * m_t_prime
        new_param = param - lr * m_t_bar / (K.sqrt(v_t_prime) + self.epsilon)
        return new_param, [(m, m_t), (v, v_t)]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **_betas_config(self),
            "schedule_decay": self.schedule_decay,
        }


# Keras 2's lower-case aliases name the same classes.
sgd, rmsprop, adagrad, adadelta = SGD, RMSprop, Adagrad, Adadelta
adam, adamax, nadam = Adam, Adamax, Nadam

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adamax": Adamax,
    "nadam": Nadam,
}


# Keras 3 optimizer-config keys: mapped, dropped when they change nothing, else refused.
_KERAS3_NEUTRAL = {
    "name": None,
    "jit_compile": None,
    "is_legacy_optimizer": None,
    "use_ema": False,
    "ema_momentum": None,
    "ema_overwrite_frequency": None,
    "weight_decay": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "global_clipnorm": None,
}


def _keras3_config(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Map a Keras 3 optimizer config onto minidl's arguments (see ``_KERAS3_NEUTRAL``)."""
    config = dict(config)
    if config.get("global_clipnorm") is not None:
        config["clipnorm"] = config.pop("global_clipnorm")  # minidl's clipnorm is global
    dropped = []
    for key, neutral in _KERAS3_NEUTRAL.items():
        if key not in config:
            continue
        value = config.pop(key)
        if key in ("name", "jit_compile", "is_legacy_optimizer", "ema_momentum"):
            dropped.append(key)
        elif key == "ema_overwrite_frequency" or value in (neutral, 0, 0.0, False):
            continue
        else:
            raise ValueError(
                f"Optimizer {class_name}: `{key}` is not supported by minidl and would change "
                f"training. Received: {key}={value!r}"
            )
    if dropped:
        warnings.warn(
            f"Optimizer {class_name}: ignoring Keras 3 config keys with no effect in minidl: "
            f"{', '.join(dropped)}.",
            stacklevel=3,
        )
    return config


def get(identifier: str | dict[str, Any] | Optimizer) -> Optimizer:
    """Return an optimizer for a name (Keras defaults), a ``{"class_name", "config"}`` dict
    or an instance (returned unchanged).

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if not isinstance(identifier, str):
        raise TypeError(
            f"An optimizer must be a name, a dict or an Optimizer. Received: {identifier!r}"
        )
    return _class_for(identifier, identifier)()


def _class_for(name: Any, identifier: Any) -> type[Optimizer]:
    cls = OPTIMIZERS.get(str(name).strip().lower())
    if cls is None:
        raise ValueError(
            f"Unknown optimizer {name!r}. Valid names: {', '.join(sorted(OPTIMIZERS))}. "
            f"Received: optimizer={identifier!r}"
        )
    return cls


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, type[Optimizer]] | None = None
) -> Optimizer:
    """Rebuild an optimizer from ``{"class_name", "config"}`` (minidl, Keras 2 or Keras 3).

    >>> deserialize({"class_name": "Adam", "config": {"lr": 0.01, "amsgrad": True}}).amsgrad
    True
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f'An optimizer description must be a dict with "class_name" and "config". '
            f"Received: {config!r}"
        )
    name = config["class_name"]
    arguments = dict(config.get("config") or {})
    if custom_objects and name in custom_objects:
        return custom_objects[name].from_config(arguments)
    cls = _class_for(name, config)
    return cls.from_config(_keras3_config(cls.__name__, arguments))


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Return ``{"class_name", "config"}`` that ``get`` turns back into an equal optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"Expected a minidl Optimizer. Received: {optimizer!r}")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
