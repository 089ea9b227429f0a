"""Gymnasium vector environments of a task family, in the autoreset mode the collector expects."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from mbmeta.envs.family import TaskFamily


def _make_family_env(family: str, env_kwargs: dict[str, Any]) -> gym.Env:
    """Build one env of a family found by :func:`~mbmeta.envs.registry.get_family` (a name or an import path).

    Module level, with the family as a string, so that AsyncVectorEnv can pickle it for spawned workers, which import
    the family's module themselves (never the script being run).
    """
    from mbmeta.envs import get_family

    return get_family(family).make_env(**env_kwargs)


class _LocalFamilyEnv:
    """Builds envs of a family no fresh process can find (e.g. defined in ``__main__``): fine in this process only.

    Pickling it (what AsyncVectorEnv does for its spawned workers) raises the ValueError saying why and what to do.
    """

    def __init__(self, family: TaskFamily, env_kwargs: dict[str, Any], why: str) -> None:
        self.family, self.env_kwargs, self.why = family, env_kwargs, why

    def __call__(self) -> gym.Env:
        return self.family.make_env(**self.env_kwargs)

    def __reduce__(self) -> Any:
        raise ValueError(self.why)


def family_env_fns(family: TaskFamily | str, num_envs: int, **env_kwargs: Any) -> list[Callable[[], gym.Env]]:
    """``num_envs`` constructors of a family's environment, picklable for spawned workers where possible.

    Args:
        family: a family, or how :func:`~mbmeta.envs.registry.get_family` finds one (name, import path, entry point).
        num_envs: how many constructors.
        **env_kwargs: arguments of ``family.make_env``.

    A family is passed to workers by :func:`~mbmeta.envs.registry.family_reference`; one that no fresh process can
    find (defined in the script being run) still works in one process (``sync``), and ``async`` refuses it with a
    one-line ValueError when the workers are started.
    """
    from mbmeta.envs.registry import family_reference

    if isinstance(family, str):
        return [functools.partial(_make_family_env, family, dict(env_kwargs)) for _ in range(num_envs)]
    try:
        reference = family_reference(family)
    except ValueError as err:
        return [_LocalFamilyEnv(family, dict(env_kwargs), str(err)) for _ in range(num_envs)]
    return [functools.partial(_make_family_env, reference, dict(env_kwargs)) for _ in range(num_envs)]


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start spawned workers without re-running the parent's main script or module in each of them.

    multiprocessing's spawn re-imports ``__main__`` in every worker, which re-runs a launcher script that lacks an
    ``if __name__ == "__main__":`` guard (each worker would start the whole run again). The workers need nothing from
    it: their env constructors are importable functions of mbmeta (families are passed by name or import path) or
    cloudpickled by value. So ``__main__`` is hidden from multiprocessing (no ``__spec__``, no ``__file__``) while
    the workers start, and restored at once.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: vars(main)[name] for name in ("__spec__", "__file__") if name in vars(main)}
    main.__spec__ = None
    vars(main).pop("__file__", None)
    try:
        yield
    finally:
        vars(main).update(saved)


def make_vector_env(
    env_fns: Sequence[Callable[[], gym.Env]], vectorization: Literal["sync", "async"] = "sync"
) -> VectorEnv:
    """A vector env in ``NEXT_STEP`` autoreset mode (what :func:`collect_episodes` expects).

    Args:
        env_fns: one constructor per sub-environment.
        vectorization: ``"sync"`` (one process) or ``"async"`` (one spawned process per sub-environment; the
            workers do not re-run the main script, so a launcher needs no ``__main__`` guard).
    """
    if not env_fns:
        raise ValueError("env_fns is empty: need at least one environment constructor")
    if vectorization == "sync":
        return SyncVectorEnv(list(env_fns), autoreset_mode=AutoresetMode.NEXT_STEP)
    if vectorization == "async":
        with _main_not_rerun():
            return AsyncVectorEnv(list(env_fns), context="spawn", autoreset_mode=AutoresetMode.NEXT_STEP)
    raise ValueError(f"unknown vectorization {vectorization!r}; valid values are 'sync' and 'async'")
