"""Configs asking for absurd weight sizes are refused before anything is allocated.

``model_from_json`` / ``model_from_config`` build inside ``weight_budget.limit_bytes``:
``Layer.add_weight`` checks each weight's declared bytes (and the model's running total)
against ``weight_budget.MAX_MODEL_BYTES`` before its initializer runs.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import initializers, weight_budget
from minidl.layers import Conv2D, Dense, Input, concatenate
from minidl.models import Model, Sequential, model_from_config, model_from_json

SMALL = 1_000_000  # values; an initializer asked for more means the bound came too late


@functools.cache
def _unet_json() -> str:
    """A tiny U-Net-like graph: two conv branches, concatenated, then a 1x1 conv."""
    images = Input((8, 8, 1))
    left = Conv2D(4, 3, padding="same", name="left")(images)
    right = Conv2D(4, 1, name="right")(images)
    merged = concatenate([left, right])
    return Model(images, Conv2D(1, 1, name="head")(merged)).to_json()


@pytest.fixture()
def initializer_shapes(monkeypatch):
    """Record each shape an initializer is asked for; refuse (not allocate) huge ones."""
    _unet_json()  # written before the patch, so its config names the real initializers
    shapes = []
    original = initializers.get

    def recording_get(identifier):
        if getattr(identifier, "recording", False):
            return identifier
        init = original(identifier)

        def call(shape, dtype=None):
            shapes.append(tuple(shape))
            if np.prod(shape, dtype=float) > SMALL:
                raise AssertionError(f"initializer asked for {shape} before any size check")
            return init(shape, dtype)

        call.recording = True
        return call

    monkeypatch.setattr(initializers, "get", recording_get)
    return shapes


def test_the_fuzzers_huge_filters_are_refused_before_allocation(backend, initializer_shapes):
    spec = json.loads(_unet_json())
    head = next(layer for layer in spec["config"]["layers"] if layer["name"] == "head")
    head["config"]["filters"] = 696395787  # the example hypothesis found (41.5 GiB float64)
    with pytest.raises(ValueError) as info:
        model_from_json(json.dumps(spec))
    message = str(info.value)
    for part in ("'head'", "'kernel'", "(1, 1, 8, 696395787)", "filters=696395787"):
        assert part in message, part
    assert "MAX_MODEL_BYTES" in message
    assert all(np.prod(s) <= SMALL for s in initializer_shapes)


@settings(max_examples=25, deadline=None)
@given(
    layer=st.sampled_from(["left", "right", "head"]),
    filters=st.integers(2**32 + 1, 2**40),  # even the 1x1x1 kernel of 'right' > 16 GiB
)
def test_any_huge_filters_fail_with_a_clear_error(layer, filters):
    """Every count of filters that makes a kernel exceed the bound names layer and field."""
    spec = json.loads(_unet_json())
    entry = next(e for e in spec["config"]["layers"] if e["name"] == layer)
    entry["config"]["filters"] = filters
    with pytest.raises(ValueError, match=f"layer '{layer}' declares weight 'kernel'") as info:
        model_from_json(json.dumps(spec))
    assert f"filters={filters}" in str(info.value)


def test_the_bound_is_on_the_whole_model_not_each_weight(monkeypatch):
    """Weights that each fit but together exceed the bound: the layer that crosses it is named."""
    monkeypatch.setattr(weight_budget, "MAX_MODEL_BYTES", 4 * (10 * 100 + 100 + 100 * 10))
    config = Sequential(
        [Dense(100, input_shape=(10,), name="wide"), Dense(10, name="narrow")]
    ).get_config()
    spec = {"class_name": "Sequential", "config": config}
    with pytest.raises(ValueError, match="layer 'narrow' declares weight 'bias'.*bytes left"):
        model_from_config(spec)
    monkeypatch.setattr(weight_budget, "MAX_MODEL_BYTES", 4 * (10 * 100 + 100 + 100 * 10 + 10))
    assert model_from_config(spec).count_params() == 10 * 100 + 100 + 100 * 10 + 10


def test_a_vgg16_sized_weight_fits_and_one_byte_over_the_bound_does_not():
    with weight_budget.limit_bytes(weight_budget.MAX_MODEL_BYTES, "model config"):
        weight_budget.charge("fc1", "kernel", (25088, 4096))  # VGG16's largest, 411 MB
        weight_budget.charge("block1_conv1", "kernel", (3, 3, 3, 64))
    exactly = weight_budget.MAX_MODEL_BYTES // 4
    weight_budget.charge("big", "kernel", (exactly,))  # outside any limit: only the size
    with pytest.raises(ValueError, match=r"Layer 'big' declares weight 'kernel' of shape"):
        weight_budget.charge("big", "kernel", (exactly + 1,))
    with pytest.raises(ValueError, match="as float64"):
        weight_budget.charge("big", "kernel", (exactly // 2 + 1,), "float64")


def test_a_huge_layer_built_in_code_is_refused_too(initializer_shapes):
    with pytest.raises(ValueError, match=r"'dense_huge'.*\(100000, 1000000\).*units=1000000"):
        Sequential([Dense(10**6, input_shape=(10**5,), name="dense_huge")])


def test_a_negative_dimension_names_the_layer_and_shape():
    with pytest.raises(ValueError, match=r"Layer 'odd'.*weight 'kernel'.*shape=\(3, -2\)"):
        weight_budget.charge("odd", "kernel", (3, -2))


def test_running_out_of_memory_below_the_bound_is_a_clear_error(monkeypatch):
    def no_memory(identifier):
        def call(shape, dtype=None):
            raise MemoryError

        return call

    spec = _unet_json()
    monkeypatch.setattr(initializers, "get", no_memory)
    with pytest.raises(ValueError, match="Not enough memory to build the Model.*MemoryError"):
        model_from_json(spec)


def test_a_legitimate_config_still_builds(initializer_shapes):
    model = model_from_json(_unet_json())
    assert model.count_params() == (9 * 4 + 4) + (4 + 4) + (8 + 1)
    expected = [(3, 3, 1, 4), (4,), (1, 1, 1, 4), (4,), (1, 1, 8, 1), (1,)]
    assert sorted(initializer_shapes) == sorted(expected)
