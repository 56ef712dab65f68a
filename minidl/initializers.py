"""Weight initializers: plain NumPy functions of ``(shape, dtype)`` with an explicit seed.

Initial values never touch a backend, so one seed gives identical weights on every backend.
An initializer built with ``seed=`` returns the same array on every call; one built without a
seed draws from a module-level generator that ``set_seed`` (``minidl.set_random_seed``) resets.

>>> import numpy as np
>>> init = get({"class_name": "GlorotUniform", "config": {"seed": 1}})
>>> bool(np.array_equal(init((3, 2)), GlorotUniform(seed=1)((3, 2))))
True
>>> get("zeros")((2,)).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_generator = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Restart the generator used by initializers that were given no seed."""
    global _generator
    _generator = np.random.default_rng(seed)


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight: ``(in, out)`` or ``(kh, kw, ..., in, out)``.

    >>> compute_fans((3, 3, 8, 16))
    (72, 144)
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer(abc.ABC):
    """Base class: ``init(shape, dtype) -> np.ndarray`` plus ``get_config``."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(
                f"`seed` of {type(self).__name__} must be an int or None. Received: seed={seed!r}"
            )
        self.seed = None if seed is None else int(seed)

    def _rng(self) -> np.random.Generator:
        return _generator if self.seed is None else np.random.default_rng(self.seed)

    def __call__(self, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
        """Return a new array of ``shape`` and ``dtype``."""
        shape = tuple(int(d) for d in shape)
        return np.asarray(self.sample(shape), dtype=dtype)

    @abc.abstractmethod
    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        """Draw the float64 values of a new array of ``shape``."""

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this initializer."""
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Rebuild an initializer from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    def __init__(self) -> None:
        super().__init__(None)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)

    def get_config(self) -> dict[str, Any]:
        return {}


class Ones(Zeros):
    """All ones."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__(None)
        self.value = float(value)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal samples redrawn until they lie within two standard deviations."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


class RandomNormal(Initializer):
    """Normal samples with ``mean`` and ``stddev``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        if stddev < 0:
            raise ValueError(f"`stddev` must be >= 0. Received: stddev={stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.mean + self.stddev * self._rng().standard_normal(shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal samples redrawn when further than two ``stddev`` from ``mean``."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.mean + self.stddev * _truncated_normal(self._rng(), shape)


class RandomUniform(Initializer):
    """Uniform samples in ``[minval, maxval)``."""

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        if maxval < minval:
            raise ValueError(
                f"`maxval` must be >= `minval`. Received: minval={minval}, maxval={maxval}"
            )
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng().uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(Initializer):
    """Samples whose variance is ``scale / n``, ``n`` chosen by ``mode`` from the weight's fans.

    ``distribution="truncated_normal"`` divides the standard deviation by 0.8796..., the standard
    deviation of a unit normal truncated to two standard deviations, so the variance is exact.
    """

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if distribution == "normal":
            distribution = "truncated_normal"
        if scale <= 0:
            raise ValueError(f"`scale` must be positive. Received: scale={scale}")
        if mode not in self.MODES:
            raise ValueError(f"`mode` must be one of {self.MODES}. Received: mode={mode!r}")
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(
                f"`distribution` must be one of {self.DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        return math.sqrt(variance) / 0.87962566103423978 * _truncated_normal(rng, shape)

    def get_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


def _preset(name: str, scale: float, mode: str, distribution: str, doc: str) -> type:
    """Make a VarianceScaling subclass whose only argument is ``seed``."""

    def __init__(self: VarianceScaling, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self: VarianceScaling) -> dict[str, Any]:
        return {"seed": self.seed}

    return type(
        name,
        (VarianceScaling,),
        {"__init__": __init__, "get_config": get_config, "__doc__": doc, "__module__": __name__},
    )


class Orthogonal(Initializer):
    """A random orthogonal matrix (Saxe et al., 2014) times ``gain``, as Keras 2 draws it.

    The weight is seen as ``(prod(shape[:-1]), shape[-1])``; its orthonormal factor from the
    SVD of a standard normal matrix is reshaped back.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(
                f"Orthogonal needs a weight of rank 2 or more. Received: shape={shape}"
            )
        flat = (math.prod(shape[:-1]), shape[-1])
        u, _, v = np.linalg.svd(self._rng().standard_normal(flat), full_matrices=False)
        q = u if u.shape == flat else v
        return self.gain * q.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (square 2-D weights only, as in Keras 2)."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(None)
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"Identity can only initialize square 2-D weights. Received: shape={shape}"
            )
        return self.gain * np.eye(shape[0])

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform", "Glorot/Xavier uniform.")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal", "Glorot normal.")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform", "He (Kaiming) uniform.")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal", "He (Kaiming) normal.")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform", "LeCun uniform.")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal", "LeCun normal.")

INITIALIZERS: dict[str, type] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "normal": RandomNormal,
    "random_normal": RandomNormal,
    "uniform": RandomUniform,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal,
    "identity": Identity,
}
# Keras 2's other spellings; _BY_CLASS_NAME below keeps one class name per class
INITIALIZER_ALIASES = {"zero": "zeros", "one": "ones"}
_BY_CLASS_NAME = {cls.__name__: cls for cls in INITIALIZERS.values()}


def get(identifier: str | dict[str, Any] | Callable[..., np.ndarray] | None) -> Callable:
    """Return an initializer for a name, a ``{"class_name", "config"}`` dict or a callable.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if identifier is None:
        identifier = "glorot_uniform"
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        cls = _BY_CLASS_NAME.get(class_name) or INITIALIZERS.get(str(class_name).lower())
        if cls is None:
            raise ValueError(
                f"Unknown initializer class {class_name!r}. Valid classes: "
                f"{', '.join(sorted(_BY_CLASS_NAME))}. Received: {identifier!r}"
            )
        return cls.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        key = INITIALIZER_ALIASES.get(key, key)
        cls = INITIALIZERS.get(key) or _BY_CLASS_NAME.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown initializer {identifier!r}. Valid names: "
                f"{', '.join(sorted(INITIALIZERS))}. Received: initializer={identifier!r}"
            )
        return cls()
    if callable(identifier):
        return identifier
    raise TypeError(
        "An initializer must be a name, a dict, or a callable (shape, dtype) -> array. "
        f"Received: {identifier!r}"
    )


def serialize(initializer: Callable[..., np.ndarray]) -> dict[str, Any] | str:
    """Return ``{"class_name", "config"}`` for a built-in initializer (a function's name else)."""
    if isinstance(initializer, Initializer):
        return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
    name = getattr(initializer, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot serialize initializer {initializer!r}: it has no __name__.")
    return name
