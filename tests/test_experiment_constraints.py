"""experiments/constraints.txt pins one release of each package a result depends on, inside pyproject's ranges."""

import importlib.metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mbmeta.provenance import PACKAGES

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, Version]:
    found = {}
    for line in (ROOT / "experiments" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            found[canonicalize_name(name)] = Version(version)
    return found


def test_every_package_that_can_change_a_result_is_pinned():
    assert {canonicalize_name(p) for p in PACKAGES} <= set(pins())


def test_each_pin_is_inside_the_library_ranges():
    declared = [Requirement(r) for r in importlib.metadata.requires("mbmeta")]  # pyproject's, extras included
    checked = 0
    for requirement in declared:
        version = pins().get(canonicalize_name(requirement.name))
        if version is not None:
            assert requirement.specifier.contains(version), f"{requirement.name}=={version} outside {requirement}"
            checked += 1
    assert checked >= 6  # torch, lightning, gymnasium, mujoco, wandb, jsonargparse, numpy, stable-baselines3
