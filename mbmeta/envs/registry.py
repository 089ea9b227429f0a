"""The registry of task families, and their Gymnasium registration.

Importing :mod:`mbmeta.envs` imports every family module listed in ``FAMILY_MODULES``; each module calls
:func:`register_family` at import time, which also registers its environment id with Gymnasium so that
``gymnasium.make("mbmeta/<Name>-v0")`` works after ``import mbmeta.envs``.
"""

from __future__ import annotations

import importlib

import gymnasium as gym

from mbmeta.envs.family import TaskFamily

# Modules (under mbmeta.envs) that define and register families, in the order `mbmeta envs` lists them.
FAMILY_MODULES: tuple[str, ...] = ("pendulum", "cartpole", "locomotion", "juggler", "cadm")

_FAMILIES: dict[str, TaskFamily] = {}
_loaded = False


def register_family(family: TaskFamily, entry_point: str, max_episode_steps: int | None = None) -> TaskFamily:
    """Add a family to the registry and register its env id with Gymnasium.

    Args:
        family: the family (its ``name`` must be unique, its ``env_id`` of the form ``mbmeta/<Name>-v0``).
        entry_point: ``"module:EnvClass"`` for ``gymnasium.register``.
        max_episode_steps: time limit applied by ``gymnasium.make`` (defaults to ``family.episode_steps``).

    Returns:
        The family, so modules can write ``FAMILY = register_family(...)``.
    """
    if family.name in _FAMILIES and type(_FAMILIES[family.name]) is not type(family):
        raise ValueError(f"a different family is already registered as {family.name!r}")
    _FAMILIES[family.name] = family
    if family.env_id not in gym.registry:
        gym.register(
            id=family.env_id,
            entry_point=entry_point,
            max_episode_steps=max_episode_steps or family.episode_steps,
        )
    return family


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for module in FAMILY_MODULES:
        importlib.import_module(f"mbmeta.envs.{module}")
    _loaded = True


def families() -> list[TaskFamily]:
    """All registered families, in listing order."""
    _load_all()
    return list(_FAMILIES.values())


def get_family(name: str) -> TaskFamily:
    """The family called ``name`` (or with env id ``name``).

    Raises:
        KeyError: unknown name; the message lists the valid ones.
    """
    _load_all()
    if name in _FAMILIES:
        return _FAMILIES[name]
    for fam in _FAMILIES.values():
        if fam.env_id == name:
            return fam
    raise KeyError(f"unknown task family {name!r}; valid families are {sorted(_FAMILIES)}")
