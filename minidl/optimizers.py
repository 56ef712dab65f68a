"""Optimizers that return their updates as data (Lasagne style).

``get_updates(params, grads)`` returns ``[(variable, new_value), ...]`` for the compiled
training step to apply. The learning rate, the iteration counter and every slot (momentum,
moving averages) are backend variables created on the first ``get_updates``, so changing
``optimizer.learning_rate`` with ``K.set_value`` takes effect without recompiling.

>>> from minidl import optimizers
>>> opt = optimizers.get("adam")
>>> type(opt).__name__, opt.get_config()["learning_rate"]
('Adam', 0.001)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl import backend as K


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
        clipnorm: rescale each gradient whose L2 norm exceeds this value.
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
    """

    slot_names: tuple[str, ...] = ()

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
        """State variables in a fixed order: iterations, then each parameter's slots."""
        if self._backend is None:
            return []
        return [self._iterations] + [v for _, slots in self._slots.values() for v in slots]

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
        if not self._slots and self.slot_names and len(arrays) > 1:
            K.set_value(self._iterations, np.asarray(arrays[0], dtype="int64"))
            self._pending_weights = arrays[1:]
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
    def _clip(self, grad: Any) -> Any:
        if self.clipnorm is not None:
            norm = K.sqrt(K.sum(K.square(grad)))
            grad = grad * (self.clipnorm / K.maximum(norm, self.clipnorm))
        if self.clipvalue is not None:
            grad = K.clip(grad, -self.clipvalue, self.clipvalue)
        return grad

    def get_updates(self, params: Sequence[Any], grads: Sequence[Any]) -> list[tuple[Any, Any]]:
        """Return ``(variable, new_value)`` pairs for one step of this optimizer."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(
                f"Optimizer {self.name} needs one gradient per parameter. "
                f"Received: {len(params)} parameters and {len(grads)} gradients."
            )
        self._ensure_state()
        lr = self._learning_rate
        if self.decay > 0:
            lr = lr / (1.0 + self.decay * K.cast(self._iterations, K.floatx()))
        step = K.cast(self._iterations + 1, K.floatx())
        updates: list[tuple[Any, Any]] = [(self._iterations, self._iterations + 1)]
        for param, grad, slots in zip(params, grads, self._slots_for(params)):
            dtype = K.dtype(param)  # float64 weights get float64 hyper-parameters
            param_lr = lr if K.dtype(lr) == dtype else K.cast(lr, dtype)
            param_step = step if K.dtype(step) == dtype else K.cast(step, dtype)
            new_param, slot_updates = self.update_rule(
                param, self._clip(grad), slots, param_lr, param_step
            )
            updates.append((param, new_param))
            updates.extend(slot_updates)
        return updates

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


def _power(base: float, exponent: Any) -> Any:
    """``base ** exponent`` for a Python float base in [0, 1) and a positive tensor exponent."""
    if base == 0.0:
        return exponent * 0.0
    return K.exp(exponent * math.log(base))


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with the bias correction folded into the step size.

    ``lr_t = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``;
    ``p -= lr_t * m_t / (sqrt(v_t) + epsilon)`` (the Keras 2 formulation).
    """

    slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.beta_1 = _check_number("Adam", "beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _check_number("Adam", "beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _check_number("Adam", "epsilon", epsilon, 0.0)

    def update_rule(self, param, grad, slots, lr, step):
        m, v = slots
        lr_t = lr * K.sqrt(1.0 - _power(self.beta_2, step)) / (1.0 - _power(self.beta_1, step))
        m_t = self.beta_1 * m + (1.0 - self.beta_1) * grad
        v_t = self.beta_2 * v + (1.0 - self.beta_2) * K.square(grad)
        new_param = param - lr_t * m_t / (K.sqrt(v_t) + self.epsilon)
        return new_param, [(m, m_t), (v, v_t)]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
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
        epsilon: float = 1e-7,
        decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.rho = _check_number("RMSprop", "rho", rho, 0.0, 1.0)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon, 0.0)

    def update_rule(self, param, grad, slots, lr, step):
        (accumulator,) = slots
        new_accumulator = self.rho * accumulator + (1.0 - self.rho) * K.square(grad)
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
        self, learning_rate: float = 0.01, epsilon: float = 1e-7, decay: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, decay, **kwargs)
        self.epsilon = _check_number("Adagrad", "epsilon", epsilon, 0.0)

    def update_rule(self, param, grad, slots, lr, step):
        (accumulator,) = slots
        new_accumulator = accumulator + K.square(grad)
        new_param = param - lr * grad / (K.sqrt(new_accumulator) + self.epsilon)
        return new_param, [(accumulator, new_accumulator)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def get(identifier: str | dict[str, Any] | Optimizer) -> Optimizer:
    """Return an optimizer for a name (Keras defaults), a ``{"class_name", "config"}`` dict
    or an instance (returned unchanged).

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        name, config = identifier.get("class_name"), dict(identifier.get("config") or {})
    elif isinstance(identifier, str):
        name, config = identifier, {}
    else:
        raise TypeError(
            f"An optimizer must be a name, a dict or an Optimizer. Received: {identifier!r}"
        )
    cls = OPTIMIZERS.get(str(name).strip().lower())
    if cls is None:
        raise ValueError(
            f"Unknown optimizer {name!r}. Valid names: {', '.join(sorted(OPTIMIZERS))}. "
            f"Received: optimizer={identifier!r}"
        )
    return cls.from_config(config)


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Return ``{"class_name", "config"}`` that ``get`` turns back into an equal optimizer."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
