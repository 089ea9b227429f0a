"""The registry of task families: the shipped ones, families from import paths, and installed packages' families.

:func:`get_family` resolves three spellings:

- a registered name or env id (``"pendulum"``, ``"mbmeta/Pendulum-v0"``): the shipped families (each module in
  ``FAMILY_MODULES`` calls :func:`register_family` at import time, which also registers its environment id with
  Gymnasium, so ``gymnasium.make("mbmeta/<Name>-v0")`` works after ``import mbmeta.envs``), and families registered
  by the user's code in this process;
- an import path ``"package.module:NAME"``: ``NAME`` is a :class:`TaskFamily` instance or a subclass (built without
  arguments) in an importable module; the current directory is searched too, as a web server searches for its app;
- an entry point of the group ``mbmeta.families`` (:data:`ENTRY_POINT_GROUP`): an installed package declares
  ``[project.entry-points."mbmeta.families"] arm = "my_pkg.robots:ArmFamily"`` and ``get_family("arm")`` loads it.

:func:`family_reference` gives the spelling that finds a family again in a fresh process (a spawned vector-env
worker): its name for shipped and entry-point families, its import path otherwise. A family defined in the script
being run (``__main__``) has none: spawned workers could only find it by re-running the script.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys
import warnings
from typing import Any

import gymnasium as gym

from mbmeta.envs.family import TaskFamily

# Modules (under mbmeta.envs) that define and register families, in the order `mbmeta envs` lists them.
FAMILY_MODULES: tuple[str, ...] = ("pendulum", "cartpole", "locomotion", "juggler", "cadm")

ENTRY_POINT_GROUP = "mbmeta.families"
"""Entry-point group through which installed packages provide task families (``name = "module:NAME"``)."""

_FAMILIES: dict[str, TaskFamily] = {}
# id(family) -> (family, how a fresh process finds it again: a name or an import path)
_REFERENCES: dict[int, tuple[TaskFamily, str]] = {}
_ENTRY_POINT_NAMES: dict[str, str] = {}  # entry-point name -> registered family name
_loaded = False
_entry_points_loaded = False


def register_family(
    family: TaskFamily, entry_point: str | None = None, max_episode_steps: int | None = None
) -> TaskFamily:
    """Add a family to the registry (and register its env id with Gymnasium when an entry point is given).

    Args:
        family: the family (its ``name`` must be unique).
        entry_point: ``"module:EnvClass"`` for ``gymnasium.register`` under ``family.env_id``; None for a family
            whose ``make_env`` builds its environment itself (e.g. a
            :class:`~mbmeta.envs.mujoco_fields.MujocoFieldFamily`).
        max_episode_steps: time limit applied by ``gymnasium.make`` (defaults to ``family.episode_steps``).

    Returns:
        The family, so modules can write ``FAMILY = register_family(...)``.

    Raises:
        TypeError: ``family`` is not a :class:`TaskFamily`.
        ValueError: a family of another class is already registered under the same name.
    """
    if not isinstance(family, TaskFamily):
        raise TypeError(f"register_family needs a TaskFamily instance, got {type(family).__name__}")
    if not family.name:
        raise ValueError(f"{type(family).__name__} has no name: set TaskFamily.name")
    if family.name in _FAMILIES and type(_FAMILIES[family.name]) is not type(family):
        raise ValueError(f"a different family is already registered as {family.name!r}")
    _FAMILIES[family.name] = family
    if entry_point is not None and family.env_id not in gym.registry:
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
    for family in list(_FAMILIES.values()):  # shipped families: found by name in any process
        _remember(family, family.name)


def families(*, installed: bool = True) -> list[TaskFamily]:
    """All families: the shipped ones in listing order, then installed packages' (entry points), then the rest.

    Args:
        installed: also load the families of installed packages (the ``mbmeta.families`` entry points). An entry
            point that fails to load is skipped with a warning naming it (``get_family`` of its name raises).
    """
    _load_all()
    global _entry_points_loaded
    if installed and not _entry_points_loaded:
        for entry in _entry_points():
            try:
                _load_entry_point(entry)
            except (ImportError, AttributeError, TypeError, ValueError) as err:
                warnings.warn(f"skipping task family entry point {entry.name!r}: {err}", RuntimeWarning, stacklevel=2)
        _entry_points_loaded = True
    return list(_FAMILIES.values())


def installed_families() -> dict[str, str]:
    """``{family name: "module:NAME"}`` of the families loaded from installed packages' entry points."""
    families()
    return {family: _REFERENCES[id(_FAMILIES[family])][1] for family in _ENTRY_POINT_NAMES.values()}


def get_family(name: str) -> TaskFamily:
    """The family called ``name``: a registered name or env id, an import path ``module:NAME``, or an entry point.

    Raises:
        KeyError: unknown name; the message lists the valid ones and the other spellings.
        ValueError: an import path or entry point that cannot be imported, or names no task family.
    """
    if not isinstance(name, str) or not name:
        raise KeyError(f"a task family is named by a non-empty string, got {name!r}")
    _load_all()
    if ":" in name:
        return _load_import_path(name)
    if name in _FAMILIES:
        return _FAMILIES[name]
    for fam in _FAMILIES.values():
        if fam.env_id == name:
            return fam
    if name in _ENTRY_POINT_NAMES:
        return _FAMILIES[_ENTRY_POINT_NAMES[name]]
    for entry in _entry_points():
        if entry.name == name:
            return _load_entry_point(entry)
    raise KeyError(
        f"unknown task family {name!r}; valid families are {sorted(_FAMILIES)}, an import path 'module:NAME' of "
        f"a TaskFamily instance or subclass, or a name from the {ENTRY_POINT_GROUP!r} entry points"
    )


def family_reference(family: TaskFamily) -> str:
    """How a fresh process finds ``family`` again with :func:`get_family` (a name or an import path).

    Shipped, entry-point and import-path families have one; a family the user's code registered or built is found
    by the module attribute holding it (``module:ATTR``) or by its class (``module:Class``, built without arguments).

    Raises:
        ValueError: the family is defined in the script being run (``__main__``), which a fresh process cannot
            import; or no module attribute holds it and its class needs arguments.
    """
    _load_all()
    known = _REFERENCES.get(id(family))
    if known is not None and known[0] is family:
        return known[1]
    home = sys.modules.get(type(family).__module__)
    for module in (home, *(m for m in list(sys.modules.values()) if m is not home)):
        name = getattr(module, "__name__", None)
        if module is None or name in _SCRIPT_MODULES:
            continue
        attr = _attribute_holding(module, family)
        if attr is not None:
            return _remember(family, f"{name}:{attr}")
    cls = type(family)
    if cls.__module__ not in _SCRIPT_MODULES and _builds_without_arguments(cls):
        return _remember(family, f"{cls.__module__}:{cls.__qualname__}")
    raise ValueError(
        f"task family {family.name!r} ({cls.__qualname__}) cannot be found by a fresh process (a spawned vector-env "
        "worker): define it in an importable module, not in the script being run, and name it 'module:NAME'; or use "
        "vectorization 'sync'"
    )


_SCRIPT_MODULES = ("__main__", "__mp_main__")


def _remember(family: TaskFamily, reference: str) -> str:
    # The family is kept with its reference, so its id is never reused for another object.
    _REFERENCES.setdefault(id(family), (family, reference))
    return _REFERENCES[id(family)][1]


def _attribute_holding(module: Any, family: TaskFamily) -> str | None:
    """The name of a public module-level attribute that is ``family``, or None."""
    try:
        attributes = list(vars(module).items())
    except TypeError:
        return None
    return next((attr for attr, value in attributes if value is family and not attr.startswith("_")), None)


def _builds_without_arguments(cls: type) -> bool:
    try:
        inspect.signature(cls).bind()
    except (TypeError, ValueError):
        return False
    return "<locals>" not in cls.__qualname__


def _load_import_path(path: str) -> TaskFamily:
    """The family at ``module:NAME`` (imported once; the same instance for the same path)."""
    for family, reference in list(_REFERENCES.values()):
        if reference == path:
            return family
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ValueError(f"task family import path {path!r} must read 'package.module:NAME'")
    if os.getcwd() not in sys.path and "" not in sys.path:
        # Like a web server's 'module:app': a module in the directory the command runs in is found (appended, so it
        # shadows nothing installed). Spawned workers inherit sys.path, so they find it too.
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"cannot import module {module_name!r} of task family {path!r}: {err} (is it on PYTHONPATH? the current "
            "directory is searched)"
        ) from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"task family {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return _adopt(obj, path, path)


def _adopt(obj: Any, where: str, reference: str) -> TaskFamily:
    """The family ``obj`` names (an instance, or a subclass built without arguments), registered and remembered.

    Raises:
        ValueError: ``obj`` is no family, its class needs arguments, or its name is another family's.
    """
    if isinstance(obj, type) and issubclass(obj, TaskFamily):
        registered = next((f for f in _FAMILIES.values() if type(f) is obj), None)
        if registered is not None:  # its module registered an instance already
            obj = registered
        else:
            try:
                obj = obj()
            except TypeError as err:
                raise ValueError(
                    f"task family {where!r}: cannot build {obj.__name__}() without arguments ({err})"
                ) from err
    if not isinstance(obj, TaskFamily):
        raise ValueError(f"task family {where!r} is a {type(obj).__name__}, not a TaskFamily instance or subclass")
    registered = _FAMILIES.get(obj.name)
    if registered is None:
        register_family(obj)
    elif registered is not obj:
        raise ValueError(
            f"task family {where!r} is named {obj.name!r}, which is already another family's name; give it another name"
        )
    _remember(obj, reference)
    return obj


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(entry: importlib.metadata.EntryPoint) -> TaskFamily:
    if entry.name in _ENTRY_POINT_NAMES:
        return _FAMILIES[_ENTRY_POINT_NAMES[entry.name]]
    where = f"entry point {entry.name} = {entry.value}"
    try:
        obj = entry.load()
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load task family {where!r}: {err}") from err
    family = _adopt(obj, where, entry.value)
    _ENTRY_POINT_NAMES[entry.name] = family.name
    return family
