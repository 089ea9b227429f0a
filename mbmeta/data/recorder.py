"""Recording episodes step by step from parallel environments into an :class:`~mbmeta.data.buffer.EpisodeBuffer`."""

from __future__ import annotations

from typing import Any

import numpy as np

from mbmeta.data.buffer import EpisodeBuffer, TaskLike


class EpisodeRecorder:
    """Builds episodes step by step for ``num_envs`` parallel environments and adds them to a buffer when they end.

    Call :meth:`begin` with an environment's task when its episode starts, then :meth:`add_step` (or the batched
    :meth:`add_steps`) after every step; a step with ``terminated or truncated`` closes the episode and appends it
    to the buffer.

    Args:
        buffer: where finished episodes go.
        num_envs: number of parallel environments (B).
    """

    def __init__(self, buffer: EpisodeBuffer, num_envs: int) -> None:
        if num_envs <= 0:
            raise ValueError(f"num_envs must be > 0, got {num_envs}")
        self.buffer = buffer
        self.num_envs = num_envs
        self._steps: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(num_envs)]
        self._tasks: list[TaskLike | None] = [None] * num_envs

    def begin(self, env_index: int, task: TaskLike) -> None:
        """Start a new episode in environment ``env_index`` under ``task`` (discards any unfinished steps)."""
        self._check_index(env_index)
        self._steps[env_index] = []
        self._tasks[env_index] = task

    def pending(self, env_index: int) -> int:
        """Number of steps recorded in environment ``env_index``'s unfinished episode."""
        self._check_index(env_index)
        return len(self._steps[env_index])

    def discard(self, env_index: int) -> int:
        """Drop environment ``env_index``'s unfinished episode without adding it; returns how many steps it had."""
        self._check_index(env_index)
        dropped = len(self._steps[env_index])
        self._steps[env_index] = []
        self._tasks[env_index] = None
        return dropped

    def add_step(
        self,
        env_index: int,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> int | None:
        """Record one step of one environment.

        Args:
            env_index: which environment.
            obs: ``[O]``.
            action: ``[A]``.
            reward: scalar.
            next_obs: ``[O]`` the true next observation (not an autoreset's first observation).
            terminated: the step reached a terminal state.
            truncated: the step hit a time limit.

        Returns:
            The buffer index of the episode if this step closed it, else None.
        """
        self._check_index(env_index)
        if self._tasks[env_index] is None:
            raise RuntimeError(f"environment {env_index}: call begin(env_index, task) before add_step")
        self._steps[env_index].append(
            (
                np.array(obs, dtype=np.float32),
                np.array(action, dtype=np.float32),
                np.float32(reward),
                np.array(next_obs, dtype=np.float32),
                bool(terminated),
                bool(truncated),
            )
        )
        if terminated or truncated:
            return self.finish(env_index)
        return None

    def add_steps(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        mask: np.ndarray | None = None,
    ) -> list[tuple[int, int]]:
        """Record one step of every environment (where ``mask`` is True).

        Args:
            obs: ``[B, O]``.
            action: ``[B, A]``.
            reward: ``[B]``.
            next_obs: ``[B, O]`` true next observations.
            terminated: ``[B]`` bool.
            truncated: ``[B]`` bool.
            mask: ``[B]`` bool, which environments to record (all when None).

        Returns:
            ``(env_index, episode_index)`` for every episode this step closed, in env order.
        """
        closed = []
        rows = range(self.num_envs) if mask is None else np.flatnonzero(mask)
        for i in rows:
            ep = self.add_step(int(i), obs[i], action[i], reward[i], next_obs[i], terminated[i], truncated[i])
            if ep is not None:
                closed.append((int(i), ep))
        return closed

    def finish(self, env_index: int) -> int | None:
        """Close environment ``env_index``'s episode now (e.g. collection stopped) and add it if it has steps.

        Returns:
            The buffer index of the added episode, or None if there were no steps.
        """
        self._check_index(env_index)
        steps, task = self._steps[env_index], self._tasks[env_index]
        self._steps[env_index] = []
        self._tasks[env_index] = None
        if not steps or task is None:
            return None
        obs, action, reward, next_obs, terminated, truncated = (np.stack(col) for col in zip(*steps, strict=True))
        return self.buffer.add_episode(obs, action, reward, next_obs, terminated, truncated, task)

    def _check_index(self, env_index: int) -> None:
        if not 0 <= env_index < self.num_envs:
            raise IndexError(f"env_index {env_index} out of range for {self.num_envs} environments")
