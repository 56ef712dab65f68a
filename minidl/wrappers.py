"""scikit-learn estimators around a function that builds a minidl model.

``KerasClassifier`` and ``KerasRegressor`` take a model-building function and training settings
as constructor parameters, so ``clone``, ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``
work with them. Every ``fit`` builds a fresh model. Extra keyword arguments are routed by prefix:
``model__units=8`` (or plain ``units=8``) goes to the build function, ``fit__validation_split``
to ``model.fit`` and ``optimizer__learning_rate`` to the optimizer. A build function that takes a
``meta`` argument receives a dict with ``n_features_in_``, ``input_shape_`` (one sample's
shape: ``X`` may have any rank) and ``n_classes_``/``classes_``
(classifier) or ``n_outputs_`` (regressor), so one function fits any data set.

>>> from minidl.layers import Dense
>>> from minidl.models import Sequential
>>> def build(meta, units=8):
...     return Sequential([Dense(units, activation="relu", input_shape=(meta["n_features_in_"],)),
...                        Dense(1, activation="sigmoid")])
>>> clf = KerasClassifier(build, epochs=2, batch_size=4, units=4, random_state=0)
>>> clf.get_params()["units"]
4
>>> clf.fit([[0.0, 1.0], [1.0, 0.0]] * 4, ["a", "b"] * 4).predict([[0.0, 1.0]]).shape
(1,)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from minidl import initializers, optimizers

ROUTE_PREFIXES = ("model__", "fit__", "optimizer__")


class BaseWrapper(BaseEstimator):
    """Shared parameters, routing, seeding, building and pickling of the two wrappers.

    Args:
        model: a callable returning a minidl model, compiled or not (``build_fn`` is its
            legacy name; give one of the two).
        build_fn: legacy name of ``model``.
        epochs: passes over the training data in each ``fit``.
        batch_size: samples per gradient step (and per prediction batch).
        verbose: ``model.fit`` verbosity (0 silent).
        shuffle: reshuffle the training data every epoch.
        random_state: an int (or ``RandomState``) that seeds weight initialisation and batch
            shuffling, making ``fit`` repeatable; ``None`` uses the global generators.
        optimizer: optimizer name, dict or instance; compiles (or recompiles) the model with a
            fresh optimizer. ``None`` keeps the build function's choice, else ``"adam"``.
        loss: loss name or callable overriding the build function's; ``None`` keeps it, else
            a default chosen from the targets.
        metrics: metrics for ``compile`` when the wrapper compiles the model.
        **kwargs: routed parameters (see the module docstring); visible to ``get_params``.
    """

    def __init__(
        self,
        model: Callable[..., Any] | None = None,
        *,
        build_fn: Callable[..., Any] | None = None,
        epochs: int = 1,
        batch_size: int = 32,
        verbose: int = 0,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        optimizer: Any = None,
        loss: Any = None,
        metrics: list | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_param = model
        self.build_fn = build_fn
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.shuffle = shuffle
        self.random_state = random_state
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self._routed_names: list[str] = []
        self._set_routed(kwargs)

    # ------------------------------------------------------------------ parameters
    @property
    def model(self) -> Any:
        """After ``fit``, the fitted minidl model (as Keras 2's wrapper had it); before, the
        ``model`` constructor parameter. ``get_params`` always reports the parameter."""
        fitted = self.__dict__.get("model_")
        return fitted if fitted is not None else self.__dict__.get("_model_param")

    @model.setter
    def model(self, value: Any) -> None:
        self._model_param = value

    def _set_routed(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            if key.startswith("_") or hasattr(type(self), key):
                raise TypeError(
                    f"{type(self).__name__} cannot take a parameter named {key!r}: it clashes "
                    f"with an attribute of the estimator. Received: {key}={value!r}"
                )
            setattr(self, key, value)
            if key not in self._routed_names:
                self._routed_names.append(key)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters plus every routed parameter."""
        params = super().get_params(deep=deep)
        params["model"] = self._model_param
        params.update({key: getattr(self, key) for key in self._routed_names})
        return params

    def set_params(self, **params: Any) -> BaseWrapper:
        """Set constructor or routed parameters (unknown names become routed ones); return self."""
        fixed = self._get_param_names()
        for key, value in params.items():
            if key in fixed:
                setattr(self, key, value)
        self._set_routed({k: v for k, v in params.items() if k not in fixed})
        return self

    def _routed(self, prefix: str) -> dict[str, Any]:
        return {
            key[len(prefix) :]: getattr(self, key)
            for key in self._routed_names
            if key.startswith(prefix)
        }

    def _build_params(self) -> dict[str, Any]:
        plain = {
            key: getattr(self, key)
            for key in self._routed_names
            if not key.startswith(ROUTE_PREFIXES)
        }
        return {**plain, **self._routed("model__")}

    # -------------------------------------------------------------------- building
    def _build_function(self) -> Callable[..., Any]:
        model_param = self._model_param
        if model_param is not None and self.build_fn is not None:
            raise ValueError(
                f"{type(self).__name__} takes the build function as `model` or as `build_fn`, "
                f"not both. Received: model={model_param!r}, build_fn={self.build_fn!r}"
            )
        build = model_param if model_param is not None else self.build_fn
        if not callable(build):
            raise ValueError(
                f"{type(self).__name__} needs `model`: a function that returns a minidl model. "
                f"Received: model={build!r}"
            )
        return build

    def _call_build(self, meta: dict[str, Any]) -> Any:
        build = self._build_function()
        kwargs = self._build_params()
        signature = inspect.signature(build)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = [k for k in kwargs if k not in signature.parameters and not takes_any]
        if unknown:
            raise TypeError(
                f"The build function {getattr(build, '__name__', build)!r} of "
                f"{type(self).__name__} does not take {', '.join(map(repr, unknown))}. "
                f"Received: {', '.join(f'{k}={kwargs[k]!r}' for k in unknown)}"
            )
        if "meta" in signature.parameters:
            kwargs["meta"] = meta
        model = build(**kwargs)
        if not all(callable(getattr(model, name, None)) for name in ("fit", "predict")):
            raise TypeError(
                f"The build function of {type(self).__name__} must return a minidl model. "
                f"Received: {model!r}"
            )
        return model

    def _fresh_optimizer(self, compiled_with: Any) -> Any:
        source = self.optimizer if self.optimizer is not None else compiled_with or "adam"
        base = optimizers.get(source)
        return type(base).from_config({**base.get_config(), **self._routed("optimizer__")})

    def _compile(self, model: Any, default_loss: str) -> None:
        """Compile ``model`` when it is not compiled yet or when the wrapper overrides a part."""
        compiled = getattr(model, "loss_function", None) is not None
        overrides = (
            self.optimizer is not None
            or self.loss is not None
            or self.metrics is not None
            or bool(self._routed("optimizer__"))
        )
        if compiled and not overrides:
            return
        loss = self.loss
        if loss is None:
            loss = model.loss_function if compiled else default_loss
        metrics = self.metrics
        if metrics is None and compiled:
            metrics = list(model.metrics_names[1:])
        optimizer = self._fresh_optimizer(model.optimizer if compiled else None)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Seed initialisers and shuffling from ``random_state``; restore NumPy's global state."""
        if self.random_state is None:
            yield
            return
        if isinstance(self.random_state, (int, np.integer)):
            seed = int(self.random_state)
        else:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        saved = np.random.get_state()
        initializers.set_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(saved)

    def _fit_model(self, X: np.ndarray, targets: np.ndarray, fit_params: dict[str, Any]) -> None:
        with self._seeded():
            model = self._call_build(self._meta)
            if not getattr(model, "built", True):
                model.build((None, *self.input_shape_))
            self._compile(model, self._default_loss(model))
            self._check_output(model)
            kwargs = {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "verbose": self.verbose,
                "shuffle": self.shuffle,
                **self._routed("fit__"),
                **fit_params,
            }
            history = model.fit(X, self._encode_targets(targets, model), **kwargs)
        self.model_ = model
        self.history_ = {key: list(values) for key, values in history.history.items()}

    def _predict_raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False, allow_nd=True)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"{type(self).__name__} was fitted on samples of shape {self.input_shape_}. "
                f"Received: X with samples of shape {tuple(X.shape[1:])}"
            )
        output = self.model_.predict(X, batch_size=self.batch_size, verbose=0)
        return np.asarray(output, dtype=np.float64).reshape(len(X), -1)

    # --------------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = [np.asarray(w) for w in self.model_.get_weights()]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.get("model_")
        self.__dict__.update(state)
        if weights is not None:
            model = self._call_build(self._meta)
            if not getattr(model, "built", True):
                model.build((None, *state.get("input_shape_", (self.n_features_in_,))))
            model.set_weights(weights)
            self.model_ = model


class KerasClassifier(ClassifierMixin, BaseWrapper):
    """A scikit-learn classifier around a function that builds a minidl model.

    The model ends in one sigmoid unit (two classes; ``binary_crossentropy``) or one softmax
    unit per class (``sparse_categorical_crossentropy`` by default, or
    ``categorical_crossentropy`` with one-hot targets). ``predict`` returns the original labels,
    strings included. Fitted attributes: ``model_``, ``history_``, ``classes_``, ``n_classes_``,
    ``n_features_in_``. See ``BaseWrapper`` for the parameters.
    """

    def fit(self, X: Any, y: Any, **fit_params: Any) -> KerasClassifier:
        """Build a fresh model and train it on ``X`` and labels ``y``; return self.

        ``X`` may have any rank (images too); ``y`` holds class labels or one-hot rows (then
        the classes are the column indices, as in Keras 2).
        """
        X, y = validate_data(self, X, y, dtype=np.float32, allow_nd=True, multi_output=True)
        self.input_shape_ = tuple(X.shape[1:])
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            encoded = _one_hot_labels(y)
            self.classes_ = np.arange(y.shape[1])
        else:
            y = column_or_1d(y, warn=True) if y.ndim == 2 else y
            check_classification_targets(y)
            if type_of_target(y) not in ("binary", "multiclass"):
                raise ValueError(
                    "KerasClassifier supports one column of class labels or one-hot rows. "
                    f"Received: y of type {type_of_target(y)!r}"
                )
            self.classes_, encoded = np.unique(y, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        if self.n_classes_ < 2:
            raise ValueError(
                "KerasClassifier needs at least 2 classes in y. "
                f"Received: 1 class ({self.classes_[0]!r})"
            )
        self._meta = {
            "n_features_in_": self.n_features_in_,
            "input_shape_": self.input_shape_,
            "n_classes_": self.n_classes_,
            "classes_": self.classes_,
        }
        self._fit_model(X, encoded, fit_params)
        return self

    def _default_loss(self, model: Any) -> str:
        return "binary_crossentropy" if self.n_classes_ == 2 else "sparse_categorical_crossentropy"

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``; ``y`` may be labels or one-hot rows (as at ``fit``)."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            y = self.classes_[_one_hot_labels(y)]
        return super().score(X, y, sample_weight=sample_weight)

    def _check_output(self, model: Any) -> None:
        units = model.output_shape[-1]
        if units == self.n_classes_ or (units == 1 and self.n_classes_ == 2):
            return
        raise ValueError(
            f"KerasClassifier: the model's output must have 1 unit (sigmoid, 2 classes) or one "
            f"unit per class ({self.n_classes_}). Received: output shape {model.output_shape}"
        )

    def _encode_targets(self, encoded: np.ndarray, model: Any) -> np.ndarray:
        if model.output_shape[-1] == 1:
            return encoded.astype(np.float32).reshape(-1, 1)
        if model.loss_name == "categorical_crossentropy":
            return np.eye(self.n_classes_, dtype=np.float32)[encoded]
        return encoded.astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities, shape ``(n_samples, n_classes)``, columns as ``classes_``."""
        output = self._predict_raw(X)
        if output.shape[1] == 1:
            return np.hstack([1.0 - output, output])
        return output / output.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable label of each sample (values from ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class KerasRegressor(RegressorMixin, BaseWrapper):
    """A scikit-learn regressor around a function that builds a minidl model.

    The model's output has one unit per target column (default loss ``mean_squared_error``).
    ``predict`` returns float64 of shape ``(n,)`` for a 1-D ``y`` and ``(n, k)`` otherwise;
    ``score`` is R^2. Fitted attributes: ``model_``, ``history_``, ``n_outputs_``,
    ``n_features_in_``. See ``BaseWrapper`` for the parameters.
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any, **fit_params: Any) -> KerasRegressor:
        """Build a fresh model and train it on ``X`` and numeric targets ``y``; return self."""
        X, y = validate_data(
            self, X, y, dtype=np.float32, multi_output=True, y_numeric=True, allow_nd=True
        )
        self.input_shape_ = tuple(X.shape[1:])
        self.target_ndim_ = np.ndim(y)
        targets = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        self.n_outputs_ = targets.shape[1]
        self._meta = {
            "n_features_in_": self.n_features_in_,
            "input_shape_": self.input_shape_,
            "n_outputs_": self.n_outputs_,
        }
        self._fit_model(X, targets, fit_params)
        return self

    def _default_loss(self, model: Any) -> str:
        return "mean_squared_error"

    def _check_output(self, model: Any) -> None:
        if model.output_shape[-1] != self.n_outputs_:
            raise ValueError(
                f"KerasRegressor: the model's output must have one unit per target column "
                f"({self.n_outputs_}). Received: output shape {model.output_shape}"
            )

    def _encode_targets(self, targets: np.ndarray, model: Any) -> np.ndarray:
        return targets

    def predict(self, X: Any) -> np.ndarray:
        """Return predictions, ``(n,)`` when ``y`` was 1-D at fit, else ``(n, n_outputs_)``."""
        output = self._predict_raw(X)
        return output[:, 0] if self.target_ndim_ == 1 else output


def _one_hot_labels(y: np.ndarray) -> np.ndarray:
    """Column index of the 1 in each one-hot row; ``ValueError`` for other 2-D targets."""
    if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        raise ValueError(
            "KerasClassifier takes 2-D targets only as one-hot rows (a single 1 per row). "
            f"Received: y of shape {y.shape} with other values"
        )
    return np.argmax(y, axis=1)


__all__ = ["BaseWrapper", "KerasClassifier", "KerasRegressor"]
