"""The environment a baseline trains on: one family env whose task is chosen at every reset.

- ``multitask``: every reset draws a new task from the family's *train* split (its own ``np.random.Generator``), so
  one policy learns across the training tasks without ever seeing the parameters;
- ``scratch``: every reset sets the same task (one test task, learned from scratch).

The wrapper passes the task through ``reset(options={"task": ...})`` and checks that the environment reports it in
``info["task"]``, so a training episode can never run another task than the one drawn. Observations become float32
here (what sb3's networks use; it also halves SAC's replay buffer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from mbmeta.envs.family import TaskFamily
from mbmeta.types import TaskParams

Mode = Literal["multitask", "scratch"]
MODES: tuple[str, ...] = ("multitask", "scratch")


class TaskResetWrapper(gym.Wrapper):
    """Sets a task at every reset: a new train-split task (``sampler``) or a fixed one (``task``).

    Args:
        env: an environment of ``family`` (taking ``options={"task": ...}`` at reset).
        family: the task family (samples and validates tasks).
        task: the fixed task (scratch mode); None to sample.
        split: the split tasks are sampled from when ``task`` is None (``"train"`` for multitask training).
        seed: seeds the task sampler's generator (with ``stream``).
        stream: a second seed word: which environment of several, or which restart of a resumed run.

    Attributes:
        task: the task of the current episode (None before the first reset).
        tasks_drawn: how many tasks were set so far (one per reset).
    """

    def __init__(
        self,
        env: gym.Env,
        family: TaskFamily,
        *,
        task: TaskParams | None = None,
        split: str = "train",
        seed: int = 0,
        stream: Sequence[int] = (),
    ) -> None:
        super().__init__(env)
        self.family = family
        self.fixed = None if task is None else family.validate(task)
        self.split = split
        self.rng = np.random.default_rng([seed, *stream, 2])
        self.task: TaskParams | None = None
        self.tasks_drawn = 0
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"{family.name}: the baselines need a Box observation space, got {type(space).__name__}")
        self.observation_space = gym.spaces.Box(
            space.low.astype(np.float32), space.high.astype(np.float32), space.shape, np.float32
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset with this episode's task; ``obs [O]`` float32 and ``info`` (with ``info["task"]``).

        Raises:
            RuntimeError: the environment reports another task than the one set.
        """
        task = self.fixed if self.fixed is not None else self.family.sample(self.rng, 1, self.split)[0]
        obs, info = self.env.reset(seed=seed, options={**(options or {}), "task": task})
        reported = info.get("task")
        expected = task.as_dict()
        if (
            not isinstance(reported, dict)
            or set(reported) != set(expected)
            or any(not math.isclose(float(reported[k]), v, rel_tol=1e-9, abs_tol=1e-12) for k, v in expected.items())
        ):
            raise RuntimeError(
                f"{self.family.name}: the environment reports task {reported}, not the task set {expected}"
            )
        self.task = task
        self.tasks_drawn += 1
        return np.asarray(obs, dtype=np.float32), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Step the environment; ``obs [O]`` float32."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs, dtype=np.float32), reward, terminated, truncated, info


def task_env_fns(
    family: TaskFamily,
    num_envs: int,
    *,
    task: TaskParams | None = None,
    split: str = "train",
    seed: int = 0,
    restart: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> list[Callable[[], gym.Env]]:
    """``num_envs`` constructors of :class:`TaskResetWrapper` environments.

    Environment ``i``'s task sampler is seeded with ``(seed, restart, i)``: the environments draw different task
    sequences, and a resumed run (``restart``: its environment steps so far) does not repeat the first one's.

    Args:
        family: the task family.
        num_envs: how many environments.
        task: the fixed task (scratch), or None to draw one from ``split`` at every reset.
        split: the split sampled from.
        seed: seeds the task samplers.
        restart: a second seed word (a resumed run's steps so far).
        env_kwargs: arguments of ``family.make_env``.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")

    def make(index: int) -> gym.Env:
        env = family.make_env(**(env_kwargs or {}))
        return TaskResetWrapper(env, family, task=task, split=split, seed=seed, stream=(restart, index))

    return [lambda index=i: make(index) for i in range(num_envs)]
