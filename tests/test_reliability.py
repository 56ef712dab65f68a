"""Config files, saves interrupted or aimed at missing folders, and layer dtypes.

Each test names the promise it checks (issue 11, classes 6, 9 and 10).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import backend as K
from minidl.layers import BatchNormalization, Conv2D, Dense, InputLayer
from minidl.models import Sequential

from .conftest import installed_backends

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# ------------------------------------------------------------------ minidl.json (10)
@pytest.fixture()
def config_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIDL_BACKEND", raising=False)
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    return tmp_path / "minidl.json"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'{"backend": "num\xffpy"}', "not valid UTF-8"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'["numpy"]', "must hold a JSON object"),
        (b'{"backend": 3}', '"backend" must be a string'),
    ],
)
def test_a_bad_config_file_gives_a_clear_error_naming_it(config_home, content, match):
    config_home.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        K._configured_name()
    assert str(config_home) in str(info.value)


@FUZZ
@given(content=st.binary(max_size=64) | st.text(max_size=40).map(str.encode))
def test_fuzz_config_reader_gives_a_backend_name_or_a_clear_error(config_home, content):
    config_home.write_bytes(content)
    try:
        name = K._configured_name()
    except ValueError as err:
        assert str(config_home) in str(err)
    else:
        assert isinstance(name, str) and name


def test_a_good_config_file_still_chooses_the_backend(config_home):
    config_home.write_text(json.dumps({"backend": "theano", "floatx": "float32"}))
    assert K._configured_name() == "theano"


# ---------------------------------------------------------------------- saving (9)
def _small_model() -> Sequential:
    return Sequential([Dense(2, input_shape=(3,))])


_KILLED_SAVE = """
import os, signal, sys
import numpy as np
from minidl.layers import Dense
from minidl.models import Sequential
from minidl import saving
model = Sequential([Dense(2, input_shape=(3,))])
with saving.atomic_hdf5(sys.argv[1]) as handle:
    handle.create_dataset("x", data=np.zeros(10))
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_leftovers_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    target = tmp_path / "model.h5"
    result = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target)], check=False)
    assert result.returncode != 0
    old_style = tmp_path / f".model.h5.{'a' * 32}.tmp"  # written by minidl before this fix
    old_style.write_bytes(b"partial")
    unrelated = tmp_path / f".other.h5.{'b' * 32}.tmp"
    unrelated.write_bytes(b"someone else's")
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".model.h5.")]
    assert len(leftovers) == 2  # the killed save's file and the old-style one
    assert not target.exists()
    _small_model().save(str(target))
    assert target.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".model.h5.")] == []
    assert unrelated.exists()  # another target's file stays


def test_a_live_writers_temporary_file_is_kept(tmp_path):
    target = tmp_path / "weights.h5"
    mine = tmp_path / f".weights.h5.{os.getpid()}-{'c' * 32}.tmp"  # this process is alive
    mine.write_bytes(b"in progress")
    _small_model().save_weights(str(target))
    assert mine.exists()


@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_saving_into_a_missing_folder_names_the_target(tmp_path, method):
    target = tmp_path / "no" / "such" / "folder" / "model.h5"
    with pytest.raises(FileNotFoundError) as info:
        getattr(_small_model(), method)(str(target))
    assert str(target) in str(info.value)
    assert ".tmp" not in str(info.value)


# ------------------------------------------------------------------ layer dtypes (6)
LAYERS = {
    "Dense": lambda dtype: Dense(2, dtype=dtype, input_shape=(3,)),
    "Conv2D": lambda dtype: Conv2D(2, (3, 3), dtype=dtype, input_shape=(5, 5, 1)),
    "BatchNormalization": lambda dtype: BatchNormalization(dtype=dtype, input_shape=(3,)),
}


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("dtype", ["object", "int32", "int64", "uint8", "bool", np.int16, "str"])
def test_non_float_layer_dtypes_fail_at_construction_the_same_on_every_backend(layer, dtype):
    messages = set()
    for name in installed_backends():
        K.set_backend(name)
        with pytest.raises(ValueError, match="expected a float dtype") as info:
            LAYERS[layer](dtype)
        # the layer's automatic name differs between tries; the rest must not
        messages.add(str(info.value).split("layer '")[0] + str(info.value).split("':")[-1])
    assert len(messages) == 1, messages


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_layer_dtypes_train(backend, dtype):
    model = Sequential([Dense(2, dtype=dtype, input_shape=(3,))])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 3), dtype), np.zeros((4, 2), dtype), verbose=0)
    assert all(w.dtype == np.dtype(dtype) for w in model.get_weights())


def test_input_layers_may_take_integer_ids():
    assert InputLayer(shape=(3,), dtype="int32").dtype == "int32"
    with pytest.raises(ValueError, match="dtype"):
        InputLayer(shape=(3,), dtype="object")


def test_image_data_format_reports_a_bad_config_file(config_home, monkeypatch):
    monkeypatch.setenv("MINIDL_BACKEND", "numpy")  # the backend does not read the file
    monkeypatch.setattr(K, "_image_data_format", None, raising=False)
    config_home.write_bytes(b'{"image_data_format": "channels_\xfflast"}')
    with pytest.raises(ValueError, match="not valid UTF-8") as info:
        K.image_data_format()
    assert str(config_home) in str(info.value)
