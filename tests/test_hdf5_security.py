"""Hostile HDF5 files: links out of the file, huge declared sizes, bad fields, random damage.

Every reader (``load_weights``, ``load_model``, the Keras/VGG16 weight loader, optimizer state)
must refuse what points outside the file, check declared sizes before reading, validate every
field before anything changes, and fail with a ``ValueError`` that names the file and the
path or field -- leaving the model as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import hdf5_checks
from minidl.applications.keras_weights import load_keras_h5_weights
from minidl.layers import Dense
from minidl.models import Sequential
from minidl.saving import load_model

from .strategies import JSON_SCALARS

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _model(units: int = 3) -> Sequential:
    model = Sequential([Dense(units, input_shape=(4,), name="hidden"), Dense(2, name="out")])
    model.compile("adam", "mse")
    return model


def _trained(path: str) -> Sequential:
    model = _model()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.zeros((8, 2), "float32"), epochs=1, verbose=0)
    model.save(path)
    return model


def _same(before: list[np.ndarray], model: Sequential) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def _assert_weights_refused(weights_path: str, match: str, *named: str) -> None:
    """``load_weights`` raises a ValueError matching ``match`` that names the file and each of
    ``named`` (datasets), and leaves the model's weights as they were."""
    target = _model()
    before = target.get_weights()
    with pytest.raises(ValueError, match=match) as info:
        target.load_weights(weights_path)
    for name in (weights_path, *named):
        assert name in str(info.value), name
    assert _same(before, target)


@pytest.fixture()
def files(tmp_path):
    """A whole-model file, a weights file, and a secret file outside both."""
    model_path, weights_path = str(tmp_path / "model.h5"), str(tmp_path / "weights.h5")
    model = _trained(model_path)
    model.save_weights(weights_path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(8, 7.0, "float32").tobytes())
    return model_path, weights_path, str(secret)


def _load_everywhere(path: str):
    """Yield (name, loader) for every HDF5 reader; each loader raises or returns."""
    target = _model()
    yield "load_weights", target, lambda: target.load_weights(path)
    yield "load_weights_by_name", target, lambda: target.load_weights(path, by_name=True)
    yield "keras_weights", target, lambda: load_keras_h5_weights(target, path)


# ------------------------------------------------------------------ links and storage
def _replace_with_external_storage(handle: h5py.File, name: str, secret: str) -> None:
    shape, dtype = handle[name].shape, handle[name].dtype
    del handle[name]
    handle.create_dataset(
        name, shape=shape, dtype=dtype, external=[(secret, 0, h5py.h5f.UNLIMITED)]
    )


@pytest.mark.parametrize("which", ["model", "weights"])
@pytest.mark.parametrize("attack", ["external_storage", "external_link", "soft_link"])
def test_links_and_external_storage_are_refused_by_every_reader(files, which, attack):
    model_path, weights_path, secret = files
    path = model_path if which == "model" else weights_path
    prefix = "/model_weights" if which == "model" else ""
    name = f"{prefix}/hidden/hidden/bias:0"
    with h5py.File(path, "a") as handle:
        if attack == "external_storage":
            _replace_with_external_storage(handle, name, secret)
        elif attack == "external_link":
            del handle[name]
            handle[name] = h5py.ExternalLink(secret, "/data")
        else:
            handle[f"{prefix}/spare"] = handle[name][()]
            del handle[name]
            handle[name] = h5py.SoftLink(f"{prefix}/spare")
    expected = {"external_storage": "external storage", "external_link": "external link"}
    message = expected.get(attack, "soft link")
    for reader, target, load in _load_everywhere(path):
        before = target.get_weights()
        with pytest.raises(ValueError, match=message) as info:
            load()
        assert path in str(info.value) and "hidden/bias:0" in str(info.value), reader
        assert _same(before, target), reader
    if which == "model":
        with pytest.raises(ValueError, match=message):
            load_model(path)


def test_an_unused_external_link_anywhere_in_the_file_is_refused(files):
    model_path, _, secret = files
    with h5py.File(model_path, "a") as handle:
        handle.create_group("extra/deep")["link"] = h5py.ExternalLink(secret, "/")
    with pytest.raises(ValueError, match="'/extra/deep/link' is an external link"):
        load_model(model_path)


def test_external_storage_in_optimizer_state_is_refused(files):
    model_path, _, secret = files
    with h5py.File(model_path, "a") as handle:
        _replace_with_external_storage(handle, "optimizer_weights/optimizer/state_1:0", secret)
    with pytest.raises(ValueError, match="optimizer/state_1:0.*external storage"):
        load_model(model_path)


def test_virtual_datasets_are_refused(files, tmp_path):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        layout = h5py.VirtualLayout(shape=(3,), dtype="float32")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "data", shape=(3,))
        del handle["hidden/hidden/bias:0"]
        handle["hidden"].create_virtual_dataset("hidden/bias:0", layout)
    target = _model()
    with pytest.raises(ValueError, match="virtual dataset"):
        target.load_weights(weights_path)


def test_hard_link_cycles_do_not_hang(files):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        handle["hidden/loop"] = handle["/"]
    target = _model()
    target.load_weights(weights_path)  # a cycle of hard links is walked once, then loads


# ------------------------------------------------------------------- declared sizes
@pytest.mark.parametrize("storage", ["unallocated", "compressed"])
def test_huge_declared_datasets_fail_before_reading(files, storage):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        del handle["hidden/hidden/kernel:0"]
        options = {"chunks": (1000, 1000)}
        if storage == "compressed":
            options.update(compression="gzip", fillvalue=0.0)
        dataset = handle["hidden"].create_dataset(
            "hidden/kernel:0", shape=(200_000, 200_000), dtype="float32", **options
        )
        if storage == "compressed":
            dataset[:1000, :1000] = 0.0  # one small chunk stored, 160 GB declared
    assert os.path.getsize(weights_path) < 200_000
    _assert_weights_refused(weights_path, "declares shape", "hidden/kernel:0")


def test_declared_shapes_are_compared_with_the_model_before_reading(files, monkeypatch):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        del handle["hidden/hidden/kernel:0"]
        handle["hidden"].create_dataset("hidden/kernel:0", data=np.zeros((400, 300), "float32"))
    reads = []
    original = hdf5_checks.StoredArray.read
    monkeypatch.setattr(
        hdf5_checks.StoredArray, "read", lambda self: reads.append(self.where) or original(self)
    )
    with pytest.raises(ValueError, match=r"expects shape \(4, 3\).*\(400, 300\)"):
        _model().load_weights(weights_path)
    assert reads == []  # nothing was read


def test_load_model_cannot_build_layers_larger_than_the_file(files):
    model_path, _, _ = files
    with h5py.File(model_path, "a") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][0]["config"]["units"] = 2_000_000_000
        handle.attrs["model_config"] = json.dumps(config).encode()
    with pytest.raises(ValueError, match="layer 'hidden' declares weight 'kernel'") as info:
        load_model(model_path)
    assert model_path in str(info.value)


# ----------------------------------------------------------- fields checked up front
def test_optimizer_state_shapes_are_checked_at_load(files):
    model_path, _, _ = files
    with h5py.File(model_path, "a") as handle:
        del handle["optimizer_weights/optimizer/state_1:0"]
        handle["optimizer_weights"].create_dataset(
            "optimizer/state_1:0", data=np.zeros((5, 5), "float32")
        )
    with pytest.raises(ValueError, match=r"optimizer_weights.*\(5, 5\)") as info:
        load_model(model_path)
    assert model_path in str(info.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.update(surprise=1), "unknown keys \\['surprise'\\]"),
        (lambda c: c.pop("loss"), "lacks the key 'loss'"),
        (lambda c: c.update(loss=3), "field 'loss'"),
        (lambda c: c.update(optimizer_config={"class_name": 5}), "field 'optimizer_config'"),
        (lambda c: c.update(loss_weights=["a"]), "field 'loss_weights'"),
        (lambda c: c.update(loss="no_such_loss"), "'training_config' cannot compile"),
        (
            lambda c: c.update(optimizer_config={"class_name": "Nope", "config": {}}),
            "'training_config' cannot compile",
        ),
    ],
)
def test_training_config_is_validated(files, change, match):
    model_path, _, _ = files
    with h5py.File(model_path, "a") as handle:
        config = json.loads(handle.attrs["training_config"])
        change(config)
        handle.attrs["training_config"] = json.dumps(config).encode()
    with pytest.raises(ValueError, match=match) as info:
        load_model(model_path)
    assert model_path in str(info.value)


def test_string_inside_a_shape_names_the_field(files):
    model_path, _, _ = files
    with h5py.File(model_path, "a") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][0]["config"]["batch_input_shape"] = [None, "4"]
        handle.attrs["model_config"] = json.dumps(config).encode()
    with pytest.raises(ValueError, match="batch_input_shape.*'4'"):
        load_model(model_path)


def test_non_utf8_attributes_name_the_file_and_attribute(files):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        handle.attrs["layer_names"] = np.array([b"hidden", b"o\xffut"])
    _assert_weights_refused(weights_path, "layer_names.*not valid UTF-8")


def test_an_empty_dataspace_is_refused(files):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        del handle["out/out/bias:0"]
        handle["out"].create_dataset("out/bias:0", data=h5py.Empty("f4"))
    with pytest.raises(ValueError, match="out/bias:0.*empty dataspace"):
        _model().load_weights(weights_path)


def test_object_dtype_datasets_are_refused(files):
    _, weights_path, _ = files
    with h5py.File(weights_path, "a") as handle:
        del handle["out/out/bias:0"]
        handle["out"].create_dataset("out/bias:0", data=["a", "b"], dtype=h5py.string_dtype())
    with pytest.raises(ValueError, match="out/bias:0.*must hold numbers"):
        _model().load_weights(weights_path)


def _unmappable_float32() -> h5py.h5t.TypeFloatID:
    """IEEE float32 whose exponent bias no NumPy float can hold: h5py's ``.dtype`` raises
    ``ValueError: Insufficient precision in available types to represent (31, 23, 8, 0, 23)``,
    the error a randomly damaged file once gave."""
    float_type = h5py.h5t.IEEE_F32LE.copy()
    float_type.set_ebias(10**6)
    return float_type


def _damage_float_type(handle: h5py.File, name: str) -> None:
    """Give dataset ``name`` (or attribute ``group/@attr``) an unmappable float type."""
    if "@" in name:
        group, attribute = name.split("@")
        target = handle[group or "/"].id
        h5py.h5a.delete(target, attribute.encode())
        space = h5py.h5s.create_simple((2,))
        h5py.h5a.create(target, attribute.encode(), _unmappable_float32(), space)
        with pytest.raises(ValueError, match="Insufficient precision"):
            handle[group or "/"].attrs[attribute]  # noqa: B018 - the damage is real for h5py
        return
    parent, _, leaf = name.rpartition("/")
    shape = handle[name].shape
    del handle[name]
    space = h5py.h5s.create_simple(shape)
    h5py.h5d.create(handle[parent].id, leaf.encode(), _unmappable_float32(), space)
    with pytest.raises(ValueError, match="Insufficient precision"):
        handle[name].dtype  # noqa: B018 - the damage is real for h5py


@pytest.mark.parametrize(
    ("which", "name"),
    [
        ("weights", "hidden/hidden/kernel:0"),
        ("weights", "@layer_names"),
        ("model", "model_weights/out/out/bias:0"),
        ("model", "model_weights@layer_names"),
        ("model", "optimizer_weights/optimizer/state_1:0"),
    ],
)
def test_a_damaged_float_type_names_the_file_and_the_object(files, which, name):
    model_path, weights_path, _ = files
    path = model_path if which == "model" else weights_path
    with h5py.File(path, "a") as handle:
        _damage_float_type(handle, name)
    shown = name.split("@")[-1]
    for reader, target, load in _load_everywhere(path):
        before = target.get_weights()
        with pytest.raises(ValueError, match="no NumPy dtype can hold") as info:
            load()
        assert path in str(info.value) and shown in str(info.value), reader
        assert _same(before, target), reader
    if which == "model":
        with pytest.raises(ValueError, match="no NumPy dtype can hold") as info:
            load_model(path)
        assert path in str(info.value) and shown in str(info.value)


def test_a_damaged_float_type_in_the_keras_version_names_the_file(files):
    model_path, _, _ = files
    with h5py.File(model_path, "a") as handle:
        _damage_float_type(handle, "@keras_version")
    with pytest.raises(ValueError, match="keras_version.*no NumPy dtype can hold") as info:
        load_model(model_path)
    assert model_path in str(info.value)


def test_an_h5py_value_error_that_names_no_file_gets_the_file_name(files, monkeypatch):
    """The last resort of ``open_hdf5``: any ValueError raised while a file is open names it."""
    model_path, weights_path, _ = files

    def unnamed_failure(handle, path):
        raise ValueError("Insufficient precision in available types to represent (1, 2)")

    monkeypatch.setattr(hdf5_checks, "check_file", unnamed_failure)
    _assert_weights_refused(weights_path, "While reading .*Insufficient precision")
    with pytest.raises(ValueError, match="Insufficient precision") as info:
        load_model(model_path)
    assert model_path in str(info.value)


# ------------------------------------------------------------------------ fuzzing
def _damaged_copy(path: str, damaged: Path, draw) -> str:
    """Write ``path``'s bytes, randomly damaged by ``_corrupt``, to ``damaged``."""
    with open(path, "rb") as handle:
        damaged.write_bytes(_corrupt(handle.read(), draw))
    return str(damaged)


def _corrupt(data: bytes, draw) -> bytes:
    """Overwrite a few random byte ranges, or truncate."""
    buffer = bytearray(data)
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        return bytes(buffer[: draw(st.integers(0, len(buffer) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(buffer) - 1))
        chunk = draw(st.binary(min_size=1, max_size=16))
        buffer[start : start + len(chunk)] = chunk
    return bytes(buffer[: len(data)])


@FUZZ
@given(data=st.data())
def test_fuzz_weight_loader_gives_clear_errors_and_changes_nothing(files, tmp_path, data):
    _, weights_path, _ = files
    damaged = _damaged_copy(weights_path, tmp_path / "damaged.h5", data.draw)
    target = _model()
    before = target.get_weights()
    try:
        target.load_weights(damaged)
    except ValueError as err:
        assert damaged in str(err)
        assert _same(before, target)


@FUZZ
@given(data=st.data())
def test_fuzz_load_model_gives_only_clear_errors(files, tmp_path, data):
    model_path, _, _ = files
    damaged = _damaged_copy(model_path, tmp_path / "damaged_model.h5", data.draw)
    try:
        load_model(damaged)
    except ValueError as err:
        assert damaged in str(err)


@FUZZ
@given(data=st.data())
def test_fuzz_model_config_json_gives_only_clear_errors(files, data):
    """Random edits of the JSON config: values swapped for other JSON values."""
    model_path, _, _ = files
    if not hasattr(test_fuzz_model_config_json_gives_only_clear_errors, "original"):
        with open(model_path, "rb") as handle:
            test_fuzz_model_config_json_gives_only_clear_errors.original = handle.read()
    with open(model_path, "wb") as handle:
        handle.write(test_fuzz_model_config_json_gives_only_clear_errors.original)
    with h5py.File(model_path, "r") as handle:
        config = json.loads(handle.attrs["model_config"])
    layer = data.draw(st.sampled_from(config["config"]["layers"]))
    key = data.draw(st.sampled_from(sorted(layer["config"])))
    junk = st.one_of(
        JSON_SCALARS,
        st.lists(st.one_of(st.integers(-3, 5), st.text(max_size=2), st.none()), max_size=3),
    )
    layer["config"][key] = data.draw(junk)
    with h5py.File(model_path, "a") as handle:
        handle.attrs["model_config"] = json.dumps(config).encode()
    try:
        load_model(model_path)
    except ValueError as err:
        assert model_path in str(err)


def test_running_out_of_memory_is_a_clear_error(files, monkeypatch):
    model_path, weights_path, _ = files

    def no_memory(self, key):
        raise MemoryError

    monkeypatch.setattr(h5py.Dataset, "__getitem__", no_memory)
    _assert_weights_refused(weights_path, "not enough memory", "hidden/kernel:0")
    with pytest.raises(ValueError, match="not enough memory"):
        load_model(model_path)


def test_a_keras_zip_cannot_build_layers_larger_than_its_weights(tmp_path):
    import zipfile

    path = str(tmp_path / "model.keras")
    _model().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    layers = config["config"]["layers"]
    dense = next(layer for layer in layers if layer["class_name"] == "Dense")
    dense["config"]["units"] = 2_000_000_000
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="declares weight 'kernel'") as info:
        load_model(path)
    assert path in str(info.value)
