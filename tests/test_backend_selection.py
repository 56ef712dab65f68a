"""Backend choice, the contract check, plug-ins, and the import boundary around backends/."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from minidl import backend as K
from minidl.backends import interface, registry

from .conftest import BACKENDS, backend_skip_reason

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_implements_the_whole_contract(name):
    reason = backend_skip_reason(name)
    if reason:
        pytest.skip(reason)
    module = K.load(name)
    for fn_name in interface.CONTRACT:
        impl = getattr(module, fn_name)
        expected = list(inspect.signature(getattr(interface, fn_name)).parameters)
        assert list(inspect.signature(impl).parameters) == expected, fn_name


def test_contract_lists_the_documented_groups():
    for fn_name in ("floatx", "variable", "gradients", "function", "conv2d", "pool2d", "dropout"):
        assert fn_name in interface.CONTRACT
    for fn_name in interface.CONTRACT:
        doc = getattr(interface, fn_name).__doc__
        assert doc and doc.strip(), f"{fn_name} has no docstring"


def test_contract_check_names_what_is_missing():
    fake = type(sys)("fake_backend")
    fake.floatx = lambda: "float32"
    with pytest.raises(ImportError, match=r"missing: .*epsilon.*function"):
        K.check_contract(fake, "fake")


def test_contract_check_names_a_signature_mismatch():
    module = K.load("numpy")
    fake = type(sys)("fake_backend")
    fake.__dict__.update({n: getattr(module, n) for n in interface.CONTRACT})
    fake.relu = lambda x: x
    with pytest.raises(ImportError, match=r"signatures differ: relu\(x\)"):
        K.check_contract(fake, "fake")


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"Unknown backend 'caffe'.*numpy, tensorflow, theano"):
        K.set_backend("caffe")


def test_aliases_resolve():
    assert registry.resolve("pytensor").name == "theano"
    assert registry.resolve(" TF ").name == "tensorflow"


def test_missing_package_names_the_install_command(monkeypatch):
    missing = registry.BackendInfo(
        "theano", "minidl.backends.theano", "no_such_package_xyz", "pip install -e '.[theano]'"
    )
    K.set_backend("numpy")
    monkeypatch.setitem(registry.BUILTIN, "theano", missing)
    monkeypatch.delitem(K._loaded, "theano", raising=False)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[theano\]'"):
        K.set_backend("theano")
    assert K.name() == "numpy"  # a failed switch leaves the current backend alone


def test_environment_variable_beats_config_file(monkeypatch, tmp_path):
    (tmp_path / "minidl.json").write_text(json.dumps({"backend": "tensorflow"}))
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    monkeypatch.delenv("MINIDL_BACKEND", raising=False)
    assert K._configured_name() == "tensorflow"
    monkeypatch.setenv("MINIDL_BACKEND", "theano")
    assert K._configured_name() == "theano"


def test_default_without_config_is_numpy(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    monkeypatch.delenv("MINIDL_BACKEND", raising=False)
    assert K._configured_name() == "numpy"


def test_broken_config_file_is_reported(monkeypatch, tmp_path):
    (tmp_path / "minidl.json").write_text("{not json")
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    monkeypatch.delenv("MINIDL_BACKEND", raising=False)
    with pytest.raises(ValueError, match="minidl.json"):
        K._configured_name()


def test_entry_point_plugins_are_found(monkeypatch):
    plugin = metadata.EntryPoint("myplug", "minidl.backends.numpy", registry.ENTRY_POINT_GROUP)

    def fake_entry_points(group=None):
        return [plugin] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry.metadata, "entry_points", fake_entry_points)
    registry.plugin_backends.cache_clear()
    K.set_backend("myplug")
    try:
        assert K.name() == "myplug"
        assert K.floatx() == "float32"
    finally:
        registry.plugin_backends.cache_clear()
        K.set_backend("numpy")


def test_importing_minidl_pulls_in_no_heavy_backend():
    code = (
        "import sys, minidl, minidl.models, minidl.layers, minidl.optimizers\n"
        "heavy = [m for m in ('tensorflow', 'pytensor', 'theano') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env_code = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert env_code.stdout.strip() == ""


IMPORT_OF_BACKEND_LIB = re.compile(r"^\s*(import|from)\s+(tensorflow|pytensor|theano|jax)\b", re.M)
BRANCH_ON_NAME = re.compile(r"\b(K|backend)\.name\(\)\s*(==|!=|in\b)|\b_current_name\b")


def _library_sources():
    for folder in ("minidl", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != ROOT / "minidl" / "backend.py":  # the facade itself knows the name
                yield path


def test_no_code_outside_backends_imports_a_backend_library():
    offenders = [
        str(p.relative_to(ROOT))
        for p in _library_sources()
        if IMPORT_OF_BACKEND_LIB.search(p.read_text())
    ]
    assert offenders == []


def test_no_code_outside_backends_branches_on_the_backend_name():
    offenders = [
        str(p.relative_to(ROOT)) for p in _library_sources() if BRANCH_ON_NAME.search(p.read_text())
    ]
    assert offenders == []
