"""Load weight files in Keras 2's HDF5 layout (the published ImageNet weights use it) by name.

``minidl.saving`` reads the layout: a ``layer_names`` attribute, one group per layer whose
``weight_names`` attribute lists its datasets -- ``b"block1_conv1_W_1:0"`` in the published
VGG16 files (Keras 1 names), ``b"block1_conv1/kernel:0"`` in Keras 2 files. Kernels are
stored ``(kh, kw, in, out)`` and Dense kernels ``(in, out)``: minidl's layout, used as they
are. Only a file written by Keras 2's own Theano backend (root attribute ``backend`` is
``"theano"``, and no ``minidl_version``) holds spatially flipped convolution kernels; they
are flipped back.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minidl import hdf5_checks, saving


def _written_by_keras_theano(handle: Any, path: str) -> bool:
    if "backend" not in handle.attrs:
        return False
    where = f"{path!r}: attribute 'backend'"
    backend = hdf5_checks.text(hdf5_checks.read_attribute(handle, "backend", path), where)
    return backend == "theano" and "minidl_version" not in handle.attrs


def _flip_kernel(array: np.ndarray) -> np.ndarray:
    return array[::-1, ::-1].copy() if array.ndim == 4 else array


def load_keras_h5_weights(model: Any, path: str | os.PathLike) -> None:
    """Set the weights of ``model``'s layers from a Keras 2 HDF5 weight file, matched by name.

    Every model layer that has weights must be in the file, with arrays of the same shapes;
    layers only in the file are ignored (so the with-top ImageNet file also fills a model
    built with ``include_top=False``). Everything is read and checked before any weight is
    written, so on any error the model keeps the weights it had. Each array's declared shape
    is compared with the model's before its data is read (see ``minidl.hdf5_checks`` for
    what a file may hold).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: for a file that is not HDF5, is truncated, is not in Keras' layout, lacks
            one of the model's layers, or holds arrays of other shapes (the message names the
            file, the layer and the shapes).
    """
    path = os.fspath(path)
    with saving.open_hdf5(path) as handle:
        file_layers = saving.read_weights(handle, path, lazy=True)
        stored = {name: arrays for name, arrays in file_layers if arrays}
        for layer in model.layers:
            if layer.weights and layer.name not in stored:
                shapes = [tuple(np.shape(w)) for w in layer.get_weights()]
                raise ValueError(
                    f"Layer {layer.name!r} (weights of shapes {shapes}) is missing from the "
                    f"weight file {path!r}. Received layers with weights: {sorted(stored)}"
                )
        if _written_by_keras_theano(handle, path):
            file_layers = [
                (name, [(w, a.map(_flip_kernel)) for w, a in arrays])
                for name, arrays in file_layers
            ]
        try:
            saving.assign_file_weights(model, file_layers, path, by_name=True)
        except ValueError as err:
            raise ValueError(
                f"{err} Was the model built with the same input_shape, include_top and classes "
                "as the file?"
            ) from None
