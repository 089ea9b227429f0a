"""Gymnasium vector environments of a task family, in the autoreset mode the collector expects."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from mbmeta.envs.family import TaskFamily


def _make_family_env(family_name: str, env_kwargs: dict[str, Any]) -> gym.Env:
    """Build one env of a registered family (module level so AsyncVectorEnv can pickle it for spawned workers)."""
    from mbmeta.envs import get_family

    return get_family(family_name).make_env(**env_kwargs)


def family_env_fns(family: TaskFamily | str, num_envs: int, **env_kwargs: Any) -> list[Callable[[], gym.Env]]:
    """``num_envs`` picklable constructors of a family's environment (for any vector env, including spawn)."""
    name = family if isinstance(family, str) else family.name
    return [functools.partial(_make_family_env, name, dict(env_kwargs)) for _ in range(num_envs)]


def make_vector_env(
    env_fns: Sequence[Callable[[], gym.Env]], vectorization: Literal["sync", "async"] = "sync"
) -> VectorEnv:
    """A vector env in ``NEXT_STEP`` autoreset mode (what :func:`collect_episodes` expects).

    Args:
        env_fns: one constructor per sub-environment.
        vectorization: ``"sync"`` (one process) or ``"async"`` (one spawned process per sub-environment).
    """
    if not env_fns:
        raise ValueError("env_fns is empty: need at least one environment constructor")
    if vectorization == "sync":
        return SyncVectorEnv(list(env_fns), autoreset_mode=AutoresetMode.NEXT_STEP)
    if vectorization == "async":
        return AsyncVectorEnv(list(env_fns), context="spawn", autoreset_mode=AutoresetMode.NEXT_STEP)
    raise ValueError(f"unknown vectorization {vectorization!r}; valid values are 'sync' and 'async'")
