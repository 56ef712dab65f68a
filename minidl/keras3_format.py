"""Keras 3 files: the ``.keras`` zip (read and written) and ``.weights.h5``.

A ``.keras`` file is a zip holding ``metadata.json``, ``config.json`` (Keras 3's serialized
model: objects as ``{"module", "class_name", "config", "registered_name"}``, dtypes as
``DTypePolicy`` objects, ``InputLayer(batch_shape=...)``, functional inbound nodes as
``{"args": [...], "kwargs": {...}}``) and ``model.weights.h5``, whose arrays sit at
``layers/<snake_case class name>[_<k>]/vars/<i>`` with the layer's name in the ``vars`` group's
``name`` attribute. ``.weights.h5`` files hold the same weights tree alone.

Configs are converted by ``minidl.keras3_config`` (re-exported here). Reading never executes
anything from a file:
only the three expected zip members are read, sizes are bounded, and the HDF5 part goes through
``minidl.hdf5_checks``. Written files load in Keras 3 (tested with Keras 3 itself).
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import zipfile
from typing import Any

import h5py

from minidl.keras3_config import (
    _group_names,
    _weight_layers,
    from_keras3,
    is_keras3_config,
    keras3_model_config,
    keras3_training_config,
)

CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE = "config.json", "metadata.json", "model.weights.h5"
MAX_JSON_BYTES = 64 * 2**20
KERAS3_VERSION = "3.0.0"  # the format version written to metadata.json


def write_weights_h5(model: Any, handle: h5py.File) -> None:
    """Write ``model``'s weights in Keras 3's ``model.weights.h5`` layout."""
    backend = model.backend_module()
    layers_group = handle.create_group("layers")
    layers = _weight_layers(model)
    for layer, group_name in zip(layers, _group_names(layers)):
        variables = layers_group.create_group(group_name).create_group("vars")
        variables.attrs["name"] = layer.name
        for index, variable in enumerate(layer.weights):
            variables.create_dataset(str(index), data=backend.get_value(variable))
    handle.create_group("vars").attrs["name"] = model.name


def read_weights_h5(handle: h5py.File, path: str) -> dict[str, list[tuple[str, Any]]]:
    """``{group name: [(weight name, stored array), ...]}`` from a Keras 3 weights tree."""
    from minidl import saving

    layers_group = handle.get("layers")
    if not isinstance(layers_group, h5py.Group):
        raise ValueError(
            f"{path!r} is not a Keras 3 weights file (no `layers` group). Received groups: "
            f"{sorted(handle)[:10]}"
        )
    found: dict[str, list[tuple[str, Any]]] = {}
    for group_name in layers_group:
        variables = layers_group[group_name].get("vars")
        if not isinstance(variables, h5py.Group):
            continue
        count = len(variables)
        if sorted(variables, key=_int_or_inf) != [str(i) for i in range(count)]:
            raise ValueError(
                f"{path!r}: layers/{group_name}/vars must hold datasets 0..{count - 1}. "
                f"Received: {sorted(variables)[:10]}"
            )
        where = f"{path!r}, layers/{group_name}"
        found[group_name] = [
            (f"{group_name}/vars/{i}", saving._read_array(variables, str(i), where))
            for i in range(count)
        ]
    return found


def _int_or_inf(text: str) -> float:
    return int(text) if text.isdigit() else float("inf")


def assign_keras3_weights(model: Any, handle: h5py.File, path: str) -> None:
    """Load a Keras 3 weights tree into ``model`` (all checked, then written).

    As in Keras 3, layers are matched by position: the i-th layer of a class reads the group
    ``layers/<snake_case class name>_<i>`` (the first one has no suffix), whatever its name.
    """
    from minidl import saving

    found = read_weights_h5(handle, path)
    layers = _weight_layers(model)
    file_layers, matched = [], []
    for layer, group_name in zip(layers, _group_names(layers)):
        arrays = found.get(group_name, [])
        if not layer.weights and not arrays:
            continue
        if group_name not in found:
            raise ValueError(
                f"{path!r} holds no weights group layers/{group_name} for layer "
                f"{layer.name!r} of model {model.name!r}. Groups in the file: {sorted(found)}"
            )
        file_layers.append((group_name, arrays))
        matched.append(layer)
    if not matched:
        return

    class _Layers:  # the view assign_file_weights expects: .layers and .backend_module()
        def __init__(self) -> None:
            self.layers, self.name = matched, model.name

        def backend_module(self) -> Any:
            return model.backend_module()

    saving.assign_file_weights(_Layers(), file_layers, path)


# --------------------------------------------------------------------------- .keras zip
def save_keras(model: Any, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` zip (config and weights), atomically."""
    from minidl import __version__

    path = os.fspath(filepath)
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path!r} exists and overwrite=False.")
    directory = os.path.dirname(os.path.abspath(path))
    config = json.dumps(keras3_model_config(model))
    metadata = json.dumps(
        {
            "keras_version": KERAS3_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "minidl_version": __version__,
        }
    )
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        weights_path = os.path.join(scratch, WEIGHTS_FILE)
        with h5py.File(weights_path, "w") as handle:
            write_weights_h5(model, handle)
        partial = os.path.join(scratch, "model.keras.partial")
        with zipfile.ZipFile(partial, "w") as archive:
            archive.writestr(METADATA_FILE, metadata)
            archive.writestr(CONFIG_FILE, config)
            archive.write(weights_path, WEIGHTS_FILE)
        os.replace(partial, path)


def _read_member(archive: zipfile.ZipFile, name: str, path: str, limit: int) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise ValueError(f"{path!r}: {name} declares {info.file_size} bytes (limit {limit}).")
    data = archive.read(name)
    if len(data) > limit:
        raise ValueError(f"{path!r}: {name} is larger than declared.")
    return data


def load_keras(
    filepath: str | os.PathLike, custom_objects: dict[str, Any] | None = None, compile: bool = True
) -> Any:
    """Build the model stored in a Keras 3 ``.keras`` zip (minidl's or Keras 3's)."""
    from minidl import hdf5_checks, saving, weight_budget

    path = os.fspath(filepath)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a .keras (zip) file.")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        missing = {CONFIG_FILE, WEIGHTS_FILE} - names
        if missing:
            raise ValueError(
                f"{path!r} is not a Keras 3 model file: it lacks {sorted(missing)}. "
                f"Received members: {sorted(names)[:10]}"
            )
        try:
            spec = json.loads(_read_member(archive, CONFIG_FILE, path, MAX_JSON_BYTES))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ValueError(f"{path!r}: config.json is not valid JSON ({err}).") from None
        limit = getattr(hdf5_checks, "MAX_DECLARED_BYTES", 2**34) + MAX_JSON_BYTES
        with tempfile.TemporaryDirectory() as scratch:
            weights_path = os.path.join(scratch, WEIGHTS_FILE)
            with open(weights_path, "wb") as out:
                out.write(_read_member(archive, WEIGHTS_FILE, path, limit))
            with saving.open_hdf5(weights_path) as handle:
                found = read_weights_h5(handle, path)
                stored = sum(array.size for arrays in found.values() for _, array in arrays)
                with weight_budget.limit(stored, repr(path)):  # no layer beyond the file's
                    model = saving.model_from_config(from_keras3(spec, where=path), custom_objects)
                assign_keras3_weights(model, handle, path)
    compile_config = spec.get("compile_config") if isinstance(spec, dict) else None
    if compile and compile_config:
        _compile_from_keras3(model, compile_config, path)
    return model


def _compile_from_keras3(model: Any, compile_config: dict[str, Any], path: str) -> None:
    """Compile with a Keras 3 ``compile_config`` (optimizer, loss, metrics by name)."""
    optimizer = from_keras3(compile_config.get("optimizer") or "rmsprop")
    loss = compile_config.get("loss")
    metrics = compile_config.get("metrics") or []
    if isinstance(loss, dict) or any(isinstance(m, dict) for m in metrics):
        raise ValueError(
            f"{path!r}: compile_config uses serialized loss or metric objects; load with "
            "compile=False and compile the model yourself. "
            f"Received: loss={str(loss)[:100]}, metrics={str(metrics)[:100]}"
        )
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def write_keras3_weights(model: Any, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Write ``model``'s weights as a Keras 3 ``.weights.h5`` file (atomic)."""
    from minidl import saving

    with saving.atomic_hdf5(filepath, overwrite) as handle:
        write_weights_h5(model, handle)


def load_keras3_weights(model: Any, filepath: str | os.PathLike) -> None:
    """Load a Keras 3 ``.weights.h5`` file into ``model`` (matched by layer name)."""
    from minidl import saving

    path = os.fspath(filepath)
    with saving.open_hdf5(path) as handle:
        assign_keras3_weights(model, handle, path)


def keras3_weights_file(handle: h5py.File) -> bool:
    """Whether an open HDF5 file holds Keras 3's weights tree (not Keras 2's layout)."""
    return "layers" in handle and "layer_names" not in handle.attrs


__all__ = [
    "from_keras3",
    "keras3_training_config",
    "is_keras3_config",
    "keras3_model_config",
    "load_keras",
    "load_keras3_weights",
    "save_keras",
    "write_keras3_weights",
]
