"""Save and load models and weights as HDF5 files in Keras 2's layout.

A weights file has a root attribute ``layer_names``; each layer is a group whose attribute
``weight_names`` lists its datasets (``b"dense/kernel:0"``, which h5py stores at the path
``dense/dense/kernel:0``). A whole-model file adds the attributes ``model_config`` (JSON
architecture) and ``training_config`` (JSON compile settings) and keeps the weights under
``model_weights`` and the optimizer state under ``optimizer_weights``.

Writing goes to a temporary file in the same folder, renamed over the target at the end, so
a crash never leaves a half-written file. Loading reads and checks every array before writing
any weight, so a failed load changes nothing. Nothing is unpickled or evaluated: configs are
read with ``json.loads`` and datasets must hold plain numbers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from minidl import backend as K
from minidl import hdf5_checks, weight_budget
from minidl.engine import sequential as _sequential  # noqa: F401 - registers Model, Sequential
from minidl.engine import serialization

logger = logging.getLogger("minidl")

# Version of the Keras 2 weight-file layout we write; Keras 2 reads such files as its own.
KERAS_LAYOUT_VERSION = b"2.2.4"
LayerWeights = list[tuple[str, np.ndarray]]


# --------------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_hdf5(filepath: str | os.PathLike, overwrite: bool = True) -> Iterator[h5py.File]:
    """Yield a new HDF5 file that replaces ``filepath`` only when the block succeeds."""
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} already exists. Pass overwrite=True to replace it.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cannot save to {path!r}: folder {directory!r} does not exist.")
    _remove_leftovers(directory, os.path.basename(path))
    name = f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex}.tmp"
    temporary = os.path.join(directory, name)
    try:
        with h5py.File(temporary, "w") as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_leftovers(directory: str, base: str) -> None:
    """Delete temporary files that a killed save to ``base`` left (not a live writer's)."""
    pattern = re.compile(rf"\.{re.escape(base)}\.(?:(\d+)-)?[0-9a-f]{{32}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = pattern.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            if match.group(1) and _process_alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                os.remove(entry.path)
                logger.info("Removed %r, left by an interrupted save.", entry.path)


@contextlib.contextmanager
def open_hdf5(filepath: str | os.PathLike) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading; a file that is not HDF5 raises a clear ValueError."""
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            f"{path!r} is not a readable HDF5 file (it may be truncated or in another "
            f"format). Received: {err}"
        ) from None
    try:
        hdf5_checks.check_file(handle, path)
        yield handle
    except (OSError, KeyError, RuntimeError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"Could not read {path!r}; it may be damaged. Received: {err}") from None
    except ValueError as err:  # one from h5py or NumPy that does not say which file
        if path in str(err) or repr(path) in str(err):
            raise
        raise ValueError(f"While reading {path!r}: {err}") from err
    except MemoryError:
        raise ValueError(f"Could not read {path!r}: not enough memory.") from None
    finally:
        handle.close()


def _read_name_list(group: h5py.Group, name: str, path: str = "") -> list[str]:
    """Read a list-of-names attribute, also when Keras split it into ``name0``, ``name1``..."""
    return hdf5_checks.name_list(group, name, path or group.file.filename)


def _name_array(names: list[str]) -> np.ndarray:
    if not names:
        return np.zeros((0,), dtype="S1")
    return np.array([n.encode("utf8") for n in names])


def _read_array(group: h5py.Group, name: str, where: str) -> hdf5_checks.StoredArray:
    """The dataset ``name`` with its declared shape; ``read()`` loads it."""
    dataset = group.get(name)
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"{where}: weight {name!r} listed in weight_names is missing.")
    if dataset.dtype.kind not in "biuf":
        raise ValueError(
            f"{where}: weight {name!r} must hold numbers. Received: dtype {dataset.dtype}"
        )
    return hdf5_checks.StoredArray(dataset, f"{where}, weight {name!r}")


# ------------------------------------------------------------------------- weights
def write_weights(group: h5py.Group, model: Any) -> None:
    """Write ``model``'s weights into ``group`` in Keras 2's layout."""
    from minidl import __version__

    backend = model.backend_module()
    group.attrs["layer_names"] = _name_array([layer.name for layer in model.layers])
    group.attrs["backend"] = np.bytes_((model._backend_name or K.name()).encode("utf8"))
    group.attrs["keras_version"] = np.bytes_(KERAS_LAYOUT_VERSION)
    group.attrs["minidl_version"] = np.bytes_(__version__.encode("utf8"))
    for layer in model.layers:
        layer_group = group.create_group(layer.name)
        names = [layer.weight_name(w) for w in layer.weights]
        layer_group.attrs["weight_names"] = _name_array(names)
        for name, variable in zip(names, layer.weights):
            layer_group.create_dataset(name, data=backend.get_value(variable))


def read_weights(group: h5py.Group, path: str, lazy: bool = False) -> list[tuple[str, Any]]:
    """Read ``[(layer_name, [(weight_name, array), ...]), ...]`` from a weights group.

    With ``lazy=True`` the arrays are ``hdf5_checks.StoredArray``s: shapes are known, values
    are read (while the file is open) by ``assign_file_weights`` after the shapes matched.
    """
    if "layer_names" not in group.attrs and "model_weights" in group:
        group = group["model_weights"]
    try:
        layer_names = _read_name_list(group, "layer_names", path)
    except KeyError:
        raise ValueError(
            f"{path!r} holds no weights in Keras' layout (no `layer_names` attribute)."
        ) from None
    layers = []
    for layer_name in layer_names:
        layer_group = group.get(layer_name)
        if not isinstance(layer_group, h5py.Group):
            raise ValueError(f"{path!r} lists layer {layer_name!r} but has no group for it.")
        where = f"{path!r}, layer {layer_name!r}"
        names = _read_name_list(layer_group, "weight_names", path)
        arrays = [(n, _read_array(layer_group, n, where)) for n in names]
        layers.append((layer_name, arrays if lazy else [(n, a.read()) for n, a in arrays]))
    return layers


def _match_layer(layer: Any, file_name: str, arrays: LayerWeights, path: str, backend: Any):
    """Pair a model layer's variables with a file layer's arrays, checking count and shapes."""
    variables = layer.weights
    if len(variables) != len(arrays):
        raise ValueError(
            f"Layer {layer.name!r} expects {len(variables)} weights, but {path!r} holds "
            f"{len(arrays)} for layer {file_name!r}. Received: "
            f"{[name for name, _ in arrays]}"
        )
    pairs = []
    for variable, (name, array) in zip(variables, arrays):
        expected = tuple(backend.int_shape(variable))
        if tuple(array.shape) != expected:
            raise ValueError(
                f"Layer {layer.name!r}: weight {layer.weight_name(variable)!r} expects shape "
                f"{expected}, but {path!r} holds shape {tuple(array.shape)} "
                f"(weight {name!r} of layer {file_name!r})."
            )
        pairs.append((variable, array))
    return pairs


def assign_file_weights(
    model: Any,
    file_layers: list[tuple[str, LayerWeights]],
    path: str,
    by_name: bool = False,
    skip_mismatch: bool = False,
) -> None:
    """Check every array against the model, then write them all (nothing on failure)."""
    backend = model.backend_module()
    pairs: list[tuple[Any, np.ndarray]] = []
    if by_name:
        by_layer = dict(file_layers)
        for layer in model.layers:
            if layer.name not in by_layer or not layer.weights:
                continue
            try:
                pairs += _match_layer(layer, layer.name, by_layer[layer.name], path, backend)
            except ValueError as err:
                if not skip_mismatch:
                    raise
                logger.warning("Skipping loading weights of layer %r: %s", layer.name, err)
    else:
        model_layers = [layer for layer in model.layers if layer.weights]
        stored = [(name, arrays) for name, arrays in file_layers if arrays]
        if len(model_layers) != len(stored):
            raise ValueError(
                f"{path!r} holds weights for {len(stored)} layers "
                f"({[name for name, _ in stored]}), but model {model.name!r} has "
                f"{len(model_layers)} layers with weights "
                f"({[layer.name for layer in model_layers]}). Use by_name=True to load "
                "matching layers only."
            )
        for layer, (name, arrays) in zip(model_layers, stored):
            pairs += _match_layer(layer, name, arrays, path, backend)
    values = [(variable, hdf5_checks.values(array)) for variable, array in pairs]  # all first
    for variable, array in values:
        backend.set_value(variable, array.astype(backend.dtype(variable), copy=False))


def save_weights(model: Any, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Write ``model``'s weights to ``filepath`` (HDF5, Keras 2 layout, atomic)."""
    _require_built(model)
    with atomic_hdf5(filepath, overwrite) as handle:
        write_weights(handle, model)


def load_weights(
    model: Any, filepath: str | os.PathLike, by_name: bool = False, skip_mismatch: bool = False
) -> None:
    """Load weights from a weights file or a whole-model file into ``model``."""
    _require_built(model)
    path = os.fspath(filepath)
    from minidl import keras3_format

    with open_hdf5(path) as handle:  # shapes are checked against the model before any read
        if keras3_format.keras3_weights_file(handle):  # a Keras 3 .weights.h5 tree
            keras3_format.assign_keras3_weights(model, handle, path)
            return
        file_layers = read_weights(handle, path, lazy=True)
        assign_file_weights(model, file_layers, path, by_name, skip_mismatch)


def _require_built(model: Any) -> None:
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} is not built yet, so it has no weights. Give the first "
            "layer an `input_shape` or call `build(input_shape)` first."
        )


# ---------------------------------------------------------------------- whole model
def deserialize_layer(spec: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild a layer or a model from ``{"class_name", "config"}``."""
    return serialization.deserialize_layer(spec, custom_objects)


def model_from_config(spec: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild a ``Sequential`` or graph ``Model`` from ``{"class_name": ..., "config": ...}``.

    Configs written by Keras 2 (``Model`` with ``layers``/``inbound_nodes``) load too. The
    model's weights may declare at most ``weight_budget.MAX_MODEL_BYTES`` in all, checked
    before each weight is allocated; a config asking for more raises a ``ValueError`` naming
    the layer and weight.
    """
    from minidl import keras3_format

    if isinstance(spec, dict) and keras3_format.is_keras3_config(spec):
        spec = keras3_format.from_keras3(spec)  # Keras 3 layout -> minidl's (Keras 2's)
    classes = serialization.NETWORK_CLASSES
    found = spec.get("class_name") if isinstance(spec, dict) else type(spec).__name__
    if not isinstance(found, str):
        found = repr(found)
    if isinstance(spec, dict) and found == "Functional":  # tf.keras' name for a graph Model
        found = "Model"
    if custom_objects and found in custom_objects:
        cls = custom_objects[found]
    elif found in classes and found != "Network":
        cls = classes[found]
    else:
        raise ValueError(
            "Only models (Sequential, Model) can be rebuilt from a model config. "
            f"Received: class_name={found!r}"
        )
    budget = weight_budget.limit_bytes(weight_budget.MAX_MODEL_BYTES, "model config")
    try:
        with budget as charged:
            return cls.from_config(spec.get("config", {}), custom_objects)
    except MemoryError:  # below the bound, yet more than this machine can give
        used = charged.total - charged.left
        raise ValueError(
            f"Not enough memory to build the {found} that the model config describes (minidl "
            f"allows up to {weight_budget.MAX_MODEL_BYTES} bytes of weights per model). "
            f"Received: MemoryError after {used} bytes of weights were allocated"
        ) from None


def save_model(
    model: Any, filepath: str | os.PathLike, overwrite: bool = True, include_optimizer: bool = True
) -> None:
    """Write architecture, weights, compile settings and optimizer state to one HDF5 file."""
    _require_built(model)
    config = json.dumps({"class_name": type(model).__name__, "config": model.get_config()})
    training_config = getattr(model, "_training_config", None)
    with atomic_hdf5(filepath, overwrite) as handle:
        handle.attrs["model_config"] = np.bytes_(config.encode("utf8"))
        write_weights(handle.create_group("model_weights"), model)
        for key in ("backend", "keras_version", "minidl_version"):
            handle.attrs[key] = handle["model_weights"].attrs[key]
        if include_optimizer and training_config is not None:
            handle.attrs["training_config"] = np.bytes_(json.dumps(training_config).encode())
            state = []
            if model.optimizer is not None and model._backend_name == K.name():
                state = model.optimizer.get_weights()
            elif model.optimizer is not None:
                logger.warning(
                    "Saving %r without its optimizer state: the model lives on the %r backend "
                    "but %r is current.",
                    model.name,
                    model._backend_name,
                    K.name(),
                )
            group = handle.create_group("optimizer_weights")
            names = [f"optimizer/state_{i}:0" for i in range(len(state))]
            group.attrs["weight_names"] = _name_array(names)
            for name, array in zip(names, state):
                group.create_dataset(name, data=array)


def _json_attribute(handle: h5py.File, name: str, path: str) -> Any:
    try:
        where = f"{path!r}: attribute {name!r}"
        return json.loads(hdf5_checks.text(hdf5_checks.read_attribute(handle, name, path), where))
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path!r}: attribute {name!r} is not valid JSON ({err}).") from None


def _with_custom_objects(identifier: Any, objects: dict[str, Any]) -> Any:
    """Replace names found in ``objects`` by their objects, inside lists and dicts too."""
    if isinstance(identifier, dict):
        return {key: _with_custom_objects(value, objects) for key, value in identifier.items()}
    if isinstance(identifier, list):
        return [_with_custom_objects(value, objects) for value in identifier]
    if isinstance(identifier, str):
        return objects.get(identifier, identifier)
    return identifier


def load_model(
    filepath: str | os.PathLike, custom_objects: dict[str, Any] | None = None, compile: bool = True
) -> Any:
    """Rebuild a model written by ``save_model``: architecture, weights and compile settings.

    Keras 3 ``.keras`` zips (minidl's or Keras 3's) go to ``keras3_format.load_keras``.
    """
    import zipfile

    from minidl import keras3_format

    path = os.fspath(filepath)
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        return keras3_format.load_keras(path, custom_objects, compile)
    with open_hdf5(path) as handle:
        if "model_config" not in handle.attrs:
            raise ValueError(
                f"{path!r} holds no model architecture (no `model_config`); it looks like a "
                "weights file: build the model in code and call model.load_weights(path)."
            )
        spec = _json_attribute(handle, "model_config", path)
        file_layers = read_weights(handle, path)
        training_config = None
        optimizer_state: list[np.ndarray] = []
        version = ""
        if "keras_version" in handle.attrs:
            version = hdf5_checks.read_attribute(handle, "keras_version", path)
        keras3 = hdf5_checks.text(version, f"{path!r}: attribute `keras_version`").startswith("3")
        if "training_config" in handle.attrs:
            training_config = _json_attribute(handle, "training_config", path)
            if keras3 and isinstance(training_config, dict):
                training_config = keras3_format.keras3_training_config(training_config)
            hdf5_checks.check_training_config(training_config, path)
            group = handle.get("optimizer_weights")
            if isinstance(group, h5py.Group):
                names = _read_name_list(group, "weight_names", path)
                where = f"{path!r} optimizer"
                optimizer_state = [_read_array(group, n, where).read() for n in names]
            if keras3 and optimizer_state:  # Keras 3 orders optimizer state its own way
                logger.warning(
                    "%r: the optimizer state of a Keras 3 file is not loaded; the optimizer "
                    "starts afresh.",
                    path,
                )
                optimizer_state = []
    stored_values = sum(a.size for _, arrays in file_layers for _, a in arrays)
    try:
        with weight_budget.limit(stored_values, repr(path)):
            model = model_from_config(spec, custom_objects)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as err:
        text = str(err) if type(err) is ValueError else f"{type(err).__name__}: {err}"
        if repr(path) in text:
            raise
        raise ValueError(
            f"{path!r}: attribute 'model_config' describes a model that cannot be built. "
            f"Received: {text}"
        ) from None
    except MemoryError:
        raise ValueError(
            f"{path!r}: not enough memory to build the model its 'model_config' describes "
            f"({stored_values} weight values)."
        ) from None
    assign_file_weights(model, file_layers, path)
    if compile and training_config is not None:
        objects = custom_objects or {}
        try:
            model.compile(
                optimizer=training_config["optimizer_config"],
                loss=_with_custom_objects(training_config["loss"], objects),
                metrics=_with_custom_objects(training_config.get("metrics") or [], objects),
                loss_weights=training_config.get("loss_weights"),
            )
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(
                f"{path!r}: attribute 'training_config' cannot compile the model (pass "
                f"compile=False to load it uncompiled). Received: {err}"
            ) from None
        if optimizer_state:
            hdf5_checks.check_optimizer_state(
                model.optimizer, model.trainable_weights, optimizer_state, path, K
            )
            model.optimizer.set_weights(optimizer_state)
    return model
