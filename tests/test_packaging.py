"""setup.cfg installs every package in the tree (an explicit list is easy to forget)."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def _packages_in_tree() -> set[str]:
    found = set()
    for folder, import_name in (("minidl", "minidl"), ("backends", "minidl.backends")):
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((import_name, *parts)))
    return found


def test_setup_cfg_lists_every_package():
    in_tree = _packages_in_tree()
    assert {"minidl", "minidl.backends"} <= in_tree, sorted(in_tree)  # the walk found the tree
    missing = in_tree - _listed_packages()
    assert not missing, f"packages missing from setup.cfg's [options] packages: {sorted(missing)}"


def test_setup_cfg_lists_no_package_that_does_not_exist():
    listed = _listed_packages()
    assert "minidl" in listed, sorted(listed)  # the list was read, not empty
    assert listed <= _packages_in_tree()
