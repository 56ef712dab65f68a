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
    missing = _packages_in_tree() - _listed_packages()
    assert not missing, f"packages missing from setup.cfg's [options] packages: {sorted(missing)}"


def test_setup_cfg_lists_no_package_that_does_not_exist():
    assert _listed_packages() <= _packages_in_tree()
