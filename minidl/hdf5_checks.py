"""Checks run on an HDF5 file before minidl reads anything from it.

Every reader (``load_weights``, ``load_model``, the VGG16 weight loader, optimizer state)
opens files through ``minidl.saving.open_hdf5``, which calls ``check_file`` first. The file
must be self-contained and plain:

* only hard links: an external link, a soft link or a user-defined link anywhere is refused,
  naming its path inside the file, and so is a dataset whose raw data lives in other files
  (external storage) or that maps other datasets (virtual dataset);
* datasets hold plain numbers (bool, int, uint, float); object, string, compound and
  reference dtypes are refused, and so is a type no NumPy dtype can hold (a damaged float
  type, on which h5py raises "Insufficient precision ..."), in a dataset or an attribute;
* declared sizes are bounded before anything is read: a dataset may declare at most
  ``MAX_COMPRESSION_RATIO`` times the bytes it stores (1 when it is not compressed), at most
  ``MAX_DECLARED_BYTES`` in all, and a file at most ``MAX_OBJECTS`` groups and datasets.

``load_weights`` then compares each dataset's declared shape with the model's weight before
reading it; ``load_model`` builds its model inside ``minidl.weight_budget.limit`` so that a
config cannot allocate more weight values than the file holds. Errors are ``ValueError``
naming the file and the path or field.

>>> import tempfile, os, h5py, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "w.h5")
>>> with h5py.File(path, "w") as handle:
...     handle["data"] = np.ones(3)
...     handle["elsewhere"] = h5py.ExternalLink("/etc/passwd", "/")
>>> with h5py.File(path, "r") as handle:
...     check_file(handle, path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
ValueError: ...: '/elsewhere' is an external link (to '/etc/passwd'), which minidl never follows...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import h5py
import numpy as np

MAX_DECLARED_BYTES = 16 * 2**30  # all datasets of one file together (VGG16 with top: 0.5 GiB)
MAX_COMPRESSION_RATIO = 1100  # gzip's best ratio is about 1030:1
MAX_OBJECTS = 200_000  # groups and datasets in one file
MAX_ATTRIBUTE_BYTES = 64 * 2**20  # one attribute (a model config is a few KiB)
NUMBER_KINDS = "biuf"


def _where(path: str, name: str) -> str:
    return f"{path!r}: {name!r}"


def _link_problem(link: Any) -> str | None:
    """Why a link object from ``group.get(name, getlink=True)`` is refused, or None."""
    if isinstance(link, h5py.HardLink):
        return None
    if isinstance(link, h5py.ExternalLink):
        return f"is an external link (to {link.filename!r}), which minidl never follows"
    if isinstance(link, h5py.SoftLink):
        return f"is a soft link (to {link.path!r}); minidl files hold only hard links"
    return f"is a link of an unknown kind ({type(link).__name__}); minidl follows none"


def _dataset_problem(dataset: h5py.Dataset) -> str | None:
    """Why ``dataset`` is refused (storage, dtype or declared size), or None."""
    if dataset.external:
        files = [entry[0] for entry in dataset.external]
        return f"keeps its data in other files ({files}): external storage is refused"
    if dataset.is_virtual:
        return "is a virtual dataset (it maps data of other datasets or files): refused"
    if dataset.shape is None:
        return "has an empty dataspace (no array at all); a weight must be an array"
    try:
        dtype = dataset.dtype
    except (ValueError, TypeError) as err:  # e.g. a float type whose exponent bias is damaged
        return f"has a data type that no NumPy dtype can hold (it may be damaged). Received: {err}"
    if dtype.kind not in NUMBER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        return f"must hold numbers (bool, int or float). Received: dtype {dtype}"
    declared = declared_bytes(dataset)
    stored = int(dataset.id.get_storage_size())
    filters = dataset.id.get_create_plist().get_nfilters()
    ratio = MAX_COMPRESSION_RATIO if filters else 1
    if declared > max(stored, 0) * ratio and declared > 0:
        return (
            f"declares shape {dataset.shape} ({declared} bytes) but stores only {stored} "
            f"bytes{' compressed' if filters else ''}; refusing to read it"
        )
    return None


def declared_bytes(dataset: h5py.Dataset) -> int:
    """Bytes the dataset's shape and dtype declare (without reading it)."""
    return math.prod(int(d) for d in dataset.shape) * int(dataset.dtype.itemsize)


def check_file(handle: h5py.File, path: str) -> None:
    """Refuse a file with links other than hard links, external or odd datasets, or huge sizes.

    Walks every group reachable from the root (each once, so hard-link cycles end) and looks
    at each link with ``getlink=True``, so nothing is followed before it is checked.
    """
    total = 0
    seen: set[Any] = {handle.id}
    pending: list[h5py.Group] = [handle]
    while pending:
        group = pending.pop()
        for name in group:
            where = f"{group.name.rstrip('/')}/{name}"
            problem = _link_problem(group.get(name, getlink=True))
            if problem:
                raise ValueError(f"{_where(path, where)} {problem}.")
            item = group[name]
            if item.id in seen:
                continue
            seen.add(item.id)
            if len(seen) > MAX_OBJECTS:
                raise ValueError(
                    f"{path!r} holds more than {MAX_OBJECTS} groups and datasets "
                    "(minidl.hdf5_checks.MAX_OBJECTS); refusing to read it."
                )
            if isinstance(item, h5py.Group):
                pending.append(item)
            elif isinstance(item, h5py.Dataset):
                try:
                    problem = _dataset_problem(item)
                    total += 0 if problem else declared_bytes(item)
                except (OSError, RuntimeError, KeyError, TypeError, ValueError) as err:
                    problem = f"could not be inspected (it may be damaged). Received: {err}"
                if problem:
                    raise ValueError(f"{_where(path, where)} {problem}.")
            else:
                raise ValueError(
                    f"{_where(path, where)} is a {type(item).__name__}; a minidl file holds "
                    "only groups and datasets."
                )
    if total > MAX_DECLARED_BYTES:
        raise ValueError(
            f"{path!r} declares {total} bytes of datasets, more than the "
            f"{MAX_DECLARED_BYTES} bytes minidl reads from one file "
            "(minidl.hdf5_checks.MAX_DECLARED_BYTES); refusing to read it."
        )


# ---------------------------------------------------------------------------- attributes
def read_attribute(obj: h5py.HLObject, name: str, path: str) -> Any:
    """Read attribute ``name`` of ``obj`` after checking its size and dtype."""
    where = _where(path, f"{obj.name.rstrip('/')}/@{name}")
    try:
        attr_id = h5py.h5a.open(obj.id, name.encode("utf8"))
    except KeyError:
        raise KeyError(f"attribute {name!r} missing in {obj.name!r}") from None
    try:
        dtype = attr_id.dtype
    except (ValueError, TypeError) as err:  # e.g. a float type whose exponent bias is damaged
        raise ValueError(
            f"{where} has a data type that no NumPy dtype can hold (it may be damaged). "
            f"Received: {err}"
        ) from None
    size = math.prod(attr_id.shape) * int(dtype.itemsize or 1)
    if size > MAX_ATTRIBUTE_BYTES:
        raise ValueError(f"{where} declares {size} bytes, more than {MAX_ATTRIBUTE_BYTES}.")
    string = h5py.check_string_dtype(dtype)
    if dtype.kind not in NUMBER_KINDS + "S" and string is None:
        raise ValueError(f"{where} must hold numbers or text. Received: dtype {dtype}")
    try:
        return obj.attrs[name]
    except (OSError, TypeError, ValueError) as err:  # h5py decodes vlen text as UTF-8
        raise ValueError(f"{where} could not be read as text or numbers ({err}).") from None


def text(value: Any, where: str) -> str:
    """One string from an attribute value (bytes are decoded as UTF-8, strictly)."""
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{where} is not valid UTF-8 text (byte {err.start}). Received: "
                f"{bytes(value)[max(err.start - 10, 0) : err.start + 10]!r}"
            ) from None
    if isinstance(value, str):
        return value
    raise ValueError(f"{where} must be text. Received: {type(value).__name__} {value!r}"[:300])


def name_list(obj: h5py.HLObject, name: str, path: str) -> list[str]:
    """A list-of-names attribute, also when Keras split it into ``name0``, ``name1``..."""
    where = _where(path, f"{obj.name.rstrip('/')}/@{name}")
    if name in obj.attrs:
        values = np.atleast_1d(read_attribute(obj, name, path)).tolist()
    else:
        values, index = [], 0
        while f"{name}{index}" in obj.attrs:
            values.extend(np.atleast_1d(read_attribute(obj, f"{name}{index}", path)).tolist())
            index += 1
        if not index:
            raise KeyError(f"attribute {name!r} missing in {obj.name!r}")
    names = [text(value, where) for value in values]
    if any(not n or n in (".", "..") or n.startswith("/") for n in names):
        raise ValueError(f"{where} holds an empty or absolute name. Received: {names}"[:400])
    return names


# ------------------------------------------------------------------------ lazy arrays
class StoredArray:
    """A dataset whose shape is known and whose values are read only on ``read()``."""

    def __init__(self, dataset: h5py.Dataset, where: str, transform: Callable | None = None):
        self.dataset, self.where, self.transform = dataset, where, transform
        self.shape: tuple[int, ...] = tuple(int(d) for d in dataset.shape)
        self.dtype = dataset.dtype
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)

    def map(self, transform: Callable[[np.ndarray], np.ndarray]) -> StoredArray:
        """The same dataset, read through ``transform`` (which keeps the shape)."""
        return StoredArray(self.dataset, self.where, transform)

    def read(self) -> np.ndarray:
        """Read the values; failures become a ``ValueError`` naming the file and weight."""
        try:
            array = np.asarray(self.dataset[()])
        except MemoryError:
            raise ValueError(
                f"{self.where}: not enough memory to read an array of shape {self.shape} "
                f"({self.dtype})."
            ) from None
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{self.where}: the data could not be read ({err}).") from None
        return self.transform(array) if self.transform else array


def values(array: Any) -> np.ndarray:
    """``array`` read if it is a ``StoredArray``, else as a NumPy array."""
    return array.read() if isinstance(array, StoredArray) else np.asarray(array)


# -------------------------------------------------------------- compile settings
TRAINING_CONFIG_KEYS = {
    "loss": (str, dict, list, type(None)),
    "metrics": (list, dict, type(None)),
    "weighted_metrics": (list, dict, type(None)),
    "loss_weights": (list, dict, type(None)),
    "sample_weight_mode": (str, dict, list, type(None)),
    "optimizer_config": (dict, str),
}


def check_training_config(config: Any, path: str) -> None:
    """Refuse a ``training_config`` with unknown keys or values of the wrong type."""
    where = _where(path, "training_config")
    if not isinstance(config, dict):
        raise ValueError(f"{where} must be a JSON object. Received: {type(config).__name__}")
    unknown = sorted(set(config) - set(TRAINING_CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"{where} has unknown keys {unknown}; expected some of {sorted(TRAINING_CONFIG_KEYS)}."
        )
    for key in ("loss", "optimizer_config"):
        if key not in config:
            raise ValueError(f"{where} lacks the key {key!r}.")
    for key, types in TRAINING_CONFIG_KEYS.items():
        if key in config and not isinstance(config[key], types):
            raise ValueError(
                f"{where}, field {key!r}: expected one of "
                f"{[t.__name__ for t in types]}. Received: {config[key]!r}"[:400]
            )
    optimizer = config["optimizer_config"]
    if isinstance(optimizer, dict) and not (
        isinstance(optimizer.get("class_name"), str)
        and isinstance(optimizer.get("config", {}), dict)
    ):
        raise ValueError(
            f"{where}, field 'optimizer_config': expected "
            f'{{"class_name": str, "config": dict}}. Received: {optimizer!r}'[:400]
        )
    weights = config.get("loss_weights")
    numbers = weights.values() if isinstance(weights, dict) else weights or []
    if any(isinstance(w, bool) or not isinstance(w, int | float) for w in numbers):
        raise ValueError(f"{where}, field 'loss_weights' must hold numbers. Received: {weights!r}")


def check_optimizer_state(
    optimizer: Any, params: Sequence[Any], state: Sequence[Any], path: str, backend: Any
) -> None:
    """Compare saved optimizer arrays with the shapes ``optimizer`` will create for ``params``.

    The layout is ``optimizer.get_weights()``'s: the iteration count, the optimizer's shared
    scalars, then each parameter's slots.
    """
    globals_ = list(getattr(optimizer, "global_state", ()))
    slots = list(getattr(optimizer, "slot_names", ()))
    expected = [()] * (1 + len(globals_))
    for param in params:
        expected += [tuple(backend.int_shape(param))] * len(slots)
    got = [tuple(np.shape(a)) for a in state]
    if got != expected:
        raise ValueError(
            f"{_where(path, 'optimizer_weights')}: {type(optimizer).__name__} on this model "
            f"keeps {len(expected)} state arrays of shapes {expected}. Received: {len(got)} "
            f"arrays of shapes {got}"[:600]
        )
