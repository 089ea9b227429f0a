"""The software a number was measured with: versions recorded beside every run and evaluation.

A simulator release can change what an episode does (contacts, integrators), and a run resumed in a newly built
environment may continue under other versions than it started with. :func:`software_versions` is what the training
loop records at each start and resume (``software.json`` in the run directory, also logged) and what every
evaluation writes into its ``results.json`` / ``protocol.json``.
"""

from __future__ import annotations

import importlib.metadata
import platform

# the distributions whose releases can change a result (simulation, numerics, training)
PACKAGES = ("torch", "mujoco", "gymnasium", "numpy", "pytorch-lightning")


def software_versions() -> dict[str, str]:
    """``{"python": "3.11.7", "mbmeta": ..., "torch": ..., "mujoco": ..., ...}``: ``not installed`` where absent."""
    from mbmeta import __version__

    versions = {"python": platform.python_version(), "mbmeta": __version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_versions(versions: dict[str, str]) -> str:
    """``python 3.11.7, mbmeta 0.1.0, torch 2.13.0+cpu, ...`` (one log line)."""
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def version_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """``["mujoco 3.3.7 -> 4.0.1", ...]``: every package whose version differs (or appears or vanishes)."""
    names = dict.fromkeys([*before, *after])
    missing = "not recorded"
    return [
        f"{name} {before.get(name, missing)} -> {after.get(name, missing)}"
        for name in names
        if before.get(name) != after.get(name)
    ]
