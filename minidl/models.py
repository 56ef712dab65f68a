"""The Sequential model: a stack of layers with Keras 2's compile / fit / evaluate / predict.

>>> import numpy as np
>>> from minidl.models import Sequential
>>> from minidl.layers import Dense
>>> model = Sequential([Dense(4, input_dim=3, activation="relu"), Dense(1)])
>>> model.compile(optimizer="sgd", loss="mse")
>>> history = model.fit(np.ones((8, 3)), np.zeros(8), epochs=2, verbose=0)
>>> len(history.history["loss"]), model.predict(np.ones((2, 3))).shape
(2, (2, 1))
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minidl import backend as K
from minidl.engine import training
from minidl.engine.data_adapters import is_array_like, is_sequence_like, unpack_batch
from minidl.engine.sequential_base import SequentialBase
from minidl.layers import base as layer_base


class Sequential(SequentialBase):
    """A linear stack of layers (see ``SequentialBase`` for building and weights).

    Args:
        layers: layers to add in order.
        name: the model's name (default ``sequential``, ``sequential_1``, ...).
    """

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None) -> None:
        super().__init__(name=name or layer_base.unique_layer_name("sequential"))
        self.optimizer: Any = None
        self.loss_function: Callable[..., Any] | None = None
        self.loss_name = ""
        self.metric_functions: list[Callable[..., Any]] = []
        self._metric_identifiers: list[Any] = []
        self._compiled_trainable: list[Any] | None = None
        self._training_config: dict[str, Any] | None = None
        self.history: Any = None
        for layer in layers or ():
            self.add(layer)

    # ------------------------------------------------------------------- compiling
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Sequence[Any] | None = None,
    ) -> None:
        """Choose the optimizer, the loss and the metrics; the steps are compiled on first use.

        The weights trainable now are the ones ``fit`` updates: freeze layers
        (``layer.trainable = False``) before compiling to fine-tune the others.
        """
        from minidl import losses, optimizers

        if loss is None:
            raise ValueError(
                "`compile` needs a loss, e.g. loss='binary_crossentropy'. Received: loss=None"
            )
        if isinstance(metrics, (str, bytes)) or callable(metrics):
            metrics = [metrics]
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(
                f"`metrics` must be a list of metric names or functions. Received: {metrics!r}"
            )
        if self.built:
            self.require_backend()
        self.optimizer = optimizers.get(optimizer)
        self.loss_function = losses.get(loss)
        self.loss_name = getattr(self.loss_function, "__name__", "loss")
        self._metric_identifiers = list(metrics or [])
        self._resolve_metrics()
        self._compiled_trainable = list(self.trainable_weights) if self.built else None
        self._training_config = {
            "loss": loss if isinstance(loss, str) else self.loss_name,
            "metrics": [m if isinstance(m, str) else m.__name__ for m in self._metric_identifiers],
            "optimizer_config": optimizers.serialize(self.optimizer),
        }
        self.steps.clear_training()

    def _resolve_metrics(self) -> None:
        from minidl import metrics as metrics_module

        output_shape = self.output_shape if self.built else None
        self.metric_functions = [
            metrics_module.get(m, self.loss_name, output_shape) for m in self._metric_identifiers
        ]

    def _on_built(self) -> None:
        if self.loss_function is not None:
            self._resolve_metrics()
            if self._compiled_trainable is None:
                self._compiled_trainable = list(self.trainable_weights)

    def _on_structure_changed(self) -> None:
        super()._on_structure_changed()
        if self.loss_function is not None:  # the new stack's trainable weights are read again
            self._compiled_trainable = None

    @property
    def compiled_trainable_weights(self) -> list[Any]:
        """The weights ``fit`` updates: those trainable when ``compile`` was called."""
        if self._compiled_trainable is None:
            return list(self.trainable_weights)
        return list(self._compiled_trainable)

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", <metric names as given to compile>]``."""
        names = ["loss"]
        for metric in self._metric_identifiers:
            names.append(metric if isinstance(metric, str) else metric.__name__)
        return names

    def _require_compiled(self) -> None:
        if self.loss_function is None:
            raise ValueError(
                "You must compile the model before training or evaluating it: call "
                "model.compile(optimizer, loss, metrics). Received: an uncompiled model"
            )

    def _prepare_run(self, x: Any, compiled: bool = True) -> Any:
        """Build from the data if needed, check backend and compilation; return ``x``."""
        if compiled:
            self._require_compiled()
        if not self.built:
            x, sample = _peek_inputs(x)
            self.build((None, *np.shape(sample)[1:]))
        self.require_backend()
        return x

    # --------------------------------------------------------------------- training
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        callbacks: Sequence[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
    ) -> Any:
        """Train for ``epochs`` epochs and return a ``History``.

        ``x`` is an array (with ``y``), a Sequence of ``(x, y[, sample_weight])`` batches, or
        a generator (with ``steps_per_epoch``). ``validation_split`` keeps the last fraction
        of the arrays, taken before shuffling, for validation. ``verbose``: 0 silent, 1
        progress bar, 2 one line per epoch.
        """
        x = self._prepare_run(x)
        return training.fit_loop(
            self,
            x,
            y,
            batch_size,
            epochs,
            verbose,
            callbacks,
            validation_split,
            validation_data,
            shuffle,
            class_weight,
            sample_weight,
            initial_epoch,
            steps_per_epoch,
            validation_steps,
        )

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int = 1,
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> float | list[float]:
        """Return the loss (a float) or ``[loss, *metrics]``, averaged over all samples."""
        from minidl.engine.data_adapters import ArrayAdapter, make_adapter

        x = self._prepare_run(x)
        if is_array_like(x):
            arrays = training.prepare_arrays(self, x, y, sample_weight)
            if arrays[1] is None:
                raise ValueError("`evaluate` needs targets: pass `y`. Received: y=None")
            adapter: Any = ArrayAdapter(*arrays, batch_size=batch_size or 32, steps=steps)
        else:
            adapter = make_adapter(x, y, sample_weight, batch_size, steps=steps, steps_name="steps")
        results = training.evaluate_loop(self, adapter, callbacks, verbose)
        return results[0] if len(results) == 1 else results

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int = 0,
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> np.ndarray:
        """Return the model's outputs for ``x`` as one NumPy array, computed in batches."""
        from minidl.engine.data_adapters import make_adapter

        x = self._prepare_run(x, compiled=False)
        adapter = make_adapter(x, None, None, batch_size, steps=steps, steps_name="steps")
        return training.predict_loop(self, adapter, callbacks, verbose)

    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: dict[int, float] | None = None,
    ) -> float | list[float]:
        """Run one training step on one batch; return the loss or ``[loss, *metrics]``."""
        x = self._prepare_run(x)
        values = training.run_train_batch(self, (x, y, sample_weight), class_weight)
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> float | list[float]:
        """Evaluate one batch; return the loss or ``[loss, *metrics]``."""
        x = self._prepare_run(x)
        values, _ = training.run_test_batch(self, (x, y, sample_weight))
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """Return the outputs for one batch."""
        x = self._prepare_run(x, compiled=False)
        return training.predict_batch(self, x)

    def fit_generator(
        self, generator: Any, steps_per_epoch: int | None = None, epochs: int = 1, **kwargs: Any
    ) -> Any:
        """Keras 2's name for ``fit`` on a generator or Sequence."""
        return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs, **kwargs)

    def evaluate_generator(self, generator: Any, steps: int | None = None, **kwargs: Any) -> Any:
        """Keras 2's name for ``evaluate`` on a generator or Sequence."""
        kwargs.setdefault("verbose", 0)
        return self.evaluate(generator, steps=steps, **kwargs)

    def predict_generator(self, generator: Any, steps: int | None = None, **kwargs: Any) -> Any:
        """Keras 2's name for ``predict`` on a generator or Sequence."""
        return self.predict(generator, steps=steps, **kwargs)

    # ------------------------------------------------------------------ description
    def summary(
        self,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
        print_fn: Callable[[str], Any] | None = None,
    ) -> None:
        """Print a table of layers, output shapes and parameter counts (Keras 2's format)."""
        from minidl.summary import print_summary

        if not self.built:
            raise ValueError(
                f"Model {self.name!r} has not been built yet, so it has no summary. Give the "
                "first layer an `input_shape`, call `build(input_shape)`, or `fit` it first."
            )
        print_summary(self, self.backend_module().int_shape, line_length, positions, print_fn)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string (``model_from_json`` rebuilds it)."""
        from minidl import __version__

        spec = {"class_name": "Sequential", "config": self.get_config()}
        spec.update(minidl_version=__version__, backend=self._backend_name or K.name())
        return json.dumps(spec, **kwargs)

    # ----------------------------------------------------------------------- saving
    def save(self, filepath: str, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Write architecture, weights and compile settings to one HDF5 file (atomically)."""
        from minidl import saving

        saving.save_model(self, filepath, overwrite, include_optimizer)

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Write the weights to an HDF5 file in Keras 2's layout (atomically)."""
        from minidl import saving

        saving.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath: str, by_name: bool = False, skip_mismatch: bool = False):
        """Load weights saved by ``save_weights`` or ``save`` (or by Keras 2).

        Layers are matched by order, or by name with ``by_name=True``. Every array is
        checked before any weight is written, so a failed load changes nothing.
        """
        from minidl import saving

        saving.load_weights(self, filepath, by_name, skip_mismatch)


def _peek_inputs(x: Any) -> tuple[Any, Any]:
    """Return ``(x, first_input_batch)`` without losing a generator's first batch."""
    if x is None:
        raise ValueError("No input data: pass `x`. Received: x=None")
    if is_array_like(x):
        return x, np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
    if is_sequence_like(x):
        return x, np.asarray(unpack_batch(x[0], "A Sequence")[0])
    iterator = iter(x)
    first = next(iterator)
    return itertools.chain([first], iterator), np.asarray(unpack_batch(first, "A generator")[0])


def model_from_json(json_string: str, custom_objects: dict[str, Any] | None = None) -> Sequential:
    """Rebuild a model (with fresh weights) from ``to_json``'s output."""
    from minidl.saving import model_from_config

    return model_from_config(json.loads(json_string), custom_objects)


def load_model(
    filepath: str, custom_objects: dict[str, Any] | None = None, compile: bool = True
) -> Sequential:
    """Rebuild a model saved with ``model.save`` (architecture, weights, compile settings)."""
    from minidl import saving

    return saving.load_model(filepath, custom_objects, compile)
