"""``Model``: a graph of layers with Keras 2's compile / fit / evaluate / predict.

>>> import numpy as np
>>> from minidl.layers import Dense, Input
>>> from minidl.models import Model
>>> inputs = Input(shape=(3,))
>>> outputs = Dense(1)(Dense(4, activation="relu")(inputs))
>>> model = Model(inputs, outputs)
>>> model.compile(optimizer="sgd", loss="mse")
>>> history = model.fit(np.ones((8, 3)), np.zeros(8), epochs=2, verbose=0)
>>> len(history.history["loss"]), model.predict(np.ones((2, 3))).shape
(2, (2, 1))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from minidl import backend as K
from minidl.engine import compile_utils, keras2_arguments, training
from minidl.engine.data_adapters import ArrayAdapter, is_array_like, make_adapter
from minidl.engine.network import Network


class Model(Network):
    """Layers connected from ``inputs`` to ``outputs``, trained with ``compile`` and ``fit``.

    Args:
        inputs: a tensor from ``Input`` or a list of them (Keras 2 also says ``input=``).
        outputs: the tensor(s) computed from them (Keras 2 also says ``output=``).
        name: the model's name (default ``model``, ``model_1``, ...).
    """

    def __init__(
        self, inputs: Any = None, outputs: Any = None, name: str | None = None, **kwargs: Any
    ) -> None:
        self.optimizer: Any = None
        self._compile_options: compile_utils.CompileOptions | None = None
        self._output_training: list[compile_utils.OutputTraining] | None = None
        self._compiled_trainable: list[Any] | None = None
        self._training_config: dict[str, Any] | None = None
        self.history: Any = None
        super().__init__(inputs, outputs, name=name, **kwargs)

    # ------------------------------------------------------------------- compiling
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        sample_weight_mode: Any = None,
        weighted_metrics: Any = None,
    ) -> None:
        """Choose the optimizer, the loss(es) and the metrics; steps compile on first use.

        ``loss``, ``loss_weights`` and ``metrics`` are one value for every output, a list in
        output order, or a dict keyed by output name. The weights trainable now are the ones
        ``fit`` updates: freeze layers (``layer.trainable = False``) before compiling.
        ``sample_weight_mode`` is accepted for Keras 2 code: weights per position (e.g.
        ``(N, H, W)``) work without it.
        """
        from minidl import optimizers

        if weighted_metrics:
            raise ValueError(
                "`weighted_metrics` is not supported: metrics are averaged without sample "
                f"weights. Received: weighted_metrics={weighted_metrics!r}"
            )
        compile_utils.check_compile_arguments(loss, metrics)
        if self.built:
            self.require_backend()
        options = compile_utils.CompileOptions(loss, metrics, loss_weights)
        resolved = self._resolve(options) if self.built else None
        self.optimizer = optimizers.get(optimizer)
        from minidl.distribute.context import current_strategy

        self.distribute_strategy = current_strategy()  # compiled in a strategy's scope, or None
        self._compile_options = options
        self._output_training = resolved
        self._compiled_trainable = list(self.trainable_weights) if self.built else None
        self._training_config = {
            "loss": compile_utils.serializable(loss),
            "metrics": compile_utils.serializable(list(metrics) if metrics else []),
            "loss_weights": compile_utils.serializable(loss_weights),
            "sample_weight_mode": sample_weight_mode,
            "optimizer_config": optimizers.serialize(self.optimizer),
        }
        if isinstance(metrics, dict):
            self._training_config["metrics"] = compile_utils.serializable(metrics)
        self.steps.clear_training()

    def _resolve(self, options: compile_utils.CompileOptions) -> list[Any]:
        shapes = [t.shape for t in self.outputs]
        return compile_utils.resolve(options, self.output_names, shapes)

    def _on_built(self) -> None:
        if self._compile_options is not None:
            self._output_training = self._resolve(self._compile_options)
            if self._compiled_trainable is None:
                self._compiled_trainable = list(self.trainable_weights)

    @property
    def output_training(self) -> list[compile_utils.OutputTraining]:
        """Loss, weight and metrics of each output that has a loss (after ``compile``)."""
        self._require_compiled()
        if self._output_training is None:
            assert self._compile_options is not None
            self._output_training = self._resolve(self._compile_options)
        return self._output_training

    @property
    def loss_functions(self) -> list[Callable[..., Any]]:
        return [out.loss_function for out in self.output_training]

    @property
    def loss_function(self) -> Callable[..., Any] | None:
        """The loss of the first trained output (None before ``compile``)."""
        if self._compile_options is None:
            return None
        if self.built:
            return self.loss_functions[0]
        from minidl import losses

        loss = self._compile_options.loss
        return losses.get(loss) if isinstance(loss, str) or callable(loss) else None

    @property
    def loss_name(self) -> str:
        if self._compile_options is None:
            return ""
        if not self.built:
            return compile_utils.serializable(self._compile_options.loss)
        return self.output_training[0].loss_name

    @property
    def compiled_trainable_weights(self) -> list[Any]:
        """The weights ``fit`` updates: those trainable when ``compile`` was called."""
        if self._compiled_trainable is None:
            return list(self.trainable_weights)
        return list(self._compiled_trainable)

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", <output>_loss..., <metric names>]`` in Keras 2's order."""
        if self._compile_options is None:
            return ["loss"]
        if not self.built:
            metrics = self._compile_options.metrics or []
            metrics = [metrics] if isinstance(metrics, str) or callable(metrics) else metrics
            return ["loss", *[compile_utils.serializable(m) for m in metrics]]
        return compile_utils.metrics_names(self.output_training, len(self.outputs) > 1)

    def _require_compiled(self) -> None:
        if self._compile_options is None:
            raise ValueError(
                "You must compile the model before training or evaluating it: call "
                "model.compile(optimizer, loss, metrics). Received: an uncompiled model"
            )

    def _prepare_run(self, x: Any, compiled: bool = True) -> Any:
        """Check compilation and backend; subclasses may build from ``x``. Return ``x``."""
        if compiled:
            self._require_compiled()
        if x is None:
            raise ValueError("No input data: pass `x`. Received: x=None")
        self._require_graph("inputs")
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
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: int | Sequence[int] = 1,
        **kwargs: Any,
    ) -> Any:
        """Train for ``epochs`` epochs and return a ``History``.

        ``x`` is an array, a list of arrays or a dict keyed by input name (with ``y`` likewise
        by output name), a Sequence of ``(x, y[, sample_weight])`` batches, or a generator
        (with ``steps_per_epoch``). ``validation_split`` keeps the last fraction of the
        arrays, taken before shuffling, for validation. ``verbose``: 0 silent, 1 progress
        bar, 2 one line per epoch. ``validation_freq``: validate every that many epochs, or
        after the (1-based) epochs listed. Keras 1's ``nb_epoch`` and Keras 2's
        ``max_queue_size``/``workers``/``use_multiprocessing`` are accepted (see
        ``minidl.engine.keras2_arguments``).
        """
        epochs = keras2_arguments.check_extra_arguments("fit", kwargs, epochs)
        x = self._prepare_run(x)
        options = training.FitOptions(
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
            validation_freq,
        )
        strategy = getattr(self, "distribute_strategy", None)
        if strategy is not None:
            return strategy.fit(self, training.fit_loop, x, y, options)
        return training.fit_loop(self, x, y, options)

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int = 1,
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> float | list[float]:
        """Return the loss (a float) or ``[loss, ...]`` as named by ``metrics_names``."""
        keras2_arguments.check_extra_arguments("evaluate", kwargs)
        batch_size = training.check_batch_size(batch_size)
        x = self._prepare_run(x)
        if is_array_like(x):
            arrays = training.prepare_arrays(self, x, y, sample_weight)
            if arrays[1] is None:
                raise ValueError("`evaluate` needs targets: pass `y`. Received: y=None")
            adapter: Any = ArrayAdapter(*arrays, batch_size=batch_size, steps=steps)
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
        **kwargs: Any,
    ) -> Any:
        """Return the outputs for ``x``: one array, or a list for several outputs."""
        keras2_arguments.check_extra_arguments("predict", kwargs)
        batch_size = training.check_batch_size(batch_size)
        x = self._prepare_run(x, compiled=False)
        if is_array_like(x):
            xs, _, _ = training.prepare_arrays(self, x, None)
            adapter: Any = ArrayAdapter(xs, batch_size=batch_size, steps=steps)
        else:
            adapter = make_adapter(x, None, None, batch_size, steps=steps, steps_name="steps")
        return training.predict_loop(self, adapter, callbacks, verbose)

    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: dict | None = None,
    ) -> float | list[float]:
        """Run one training step on one batch; return the loss or ``[loss, ...]``."""
        x = self._prepare_run(x)
        values, _ = training.run_train_batch(self, (x, y, sample_weight), class_weight)
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> float | list[float]:
        """Evaluate one batch; return the loss or ``[loss, ...]``."""
        x = self._prepare_run(x)
        values, _ = training.run_test_batch(self, (x, y, sample_weight))
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x: Any) -> Any:
        """Return the outputs for one batch (a list for several outputs)."""
        x = self._prepare_run(x, compiled=False)
        outputs = training.predict_batch(self, x)
        return outputs[0] if len(outputs) == 1 else outputs

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

    def to_yaml(self, **kwargs: Any) -> str:
        """The architecture as YAML (``models.model_from_yaml`` rebuilds it; needs PyYAML)."""
        from minidl.models import _yaml

        return _yaml().safe_dump(json.loads(self.to_json()), **kwargs)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string (``model_from_json`` rebuilds it)."""
        from minidl import __version__

        spec = {"class_name": type(self).__name__, "config": self.get_config()}
        spec.update(minidl_version=__version__, backend=self._backend_name or K.name())
        return json.dumps(spec, **kwargs)

    # ----------------------------------------------------------------------- saving
    def save(self, filepath: str, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Write architecture, weights and compile settings to one HDF5 file (atomically).

        A name ending in ``.keras`` writes Keras 3's zip format (config and weights) instead,
        which Keras 3 loads.
        """
        from minidl import keras3_format, saving

        if str(filepath).endswith(".keras"):
            keras3_format.save_keras(self, filepath, overwrite)
            return
        saving.save_model(self, filepath, overwrite, include_optimizer)

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Write the weights to an HDF5 file in Keras 2's layout (atomically); a name ending
        in ``.weights.h5`` gets Keras 3's layout."""
        from minidl import keras3_format, saving

        if str(filepath).endswith(".weights.h5"):
            keras3_format.write_keras3_weights(self, filepath, overwrite)
            return
        saving.save_weights(self, filepath, overwrite)

    def load_weights(
        self, filepath: str, by_name: bool = False, skip_mismatch: bool = False
    ) -> None:
        """Load weights saved by ``save_weights`` or ``save`` (or by Keras 2).

        Layers are matched by order, or by name with ``by_name=True``. Every array is
        checked before any weight is written, so a failed load changes nothing.
        """
        from minidl import saving

        saving.load_weights(self, filepath, by_name, skip_mismatch)
