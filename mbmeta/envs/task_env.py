"""What every task-family environment shares: taking a task at reset, reporting it, and checking actions.

:class:`TaskEnvMixin` goes before a Gymnasium ``MujocoEnv`` subclass in the bases. The environment copies the
MuJoCo model fields its family varies once, at construction (``nominal``), and every task writes
``nominal × scale`` back through the family's pure ``apply_task(mj_model, nominal, task)``: idempotent, never
compounding, never rebuilding the model.

Setting a task:
- ``env.reset(options={"task": task})`` (a :class:`TaskParams` or a ``dict``), or
- ``env.unwrapped.task = task`` (also through ``vector_env.set_attr("task", [task_0, task_1, ...])``, which gives
  each sub-environment its own task), followed by ``reset()``.
A reset without a task keeps the current one (the nominal task at first). ``info["task"]`` always carries the
current task as ``dict[str, float]`` after ``reset`` and ``step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import mujoco
import numpy as np

from mbmeta.envs.family import TaskFamily, TaskParams

ApplyTask = Callable[[mujoco.MjModel, Mapping[str, np.ndarray], TaskParams], None]


def copy_model_fields(mj_model: mujoco.MjModel, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Copy the named ``MjModel`` array fields (e.g. ``"body_mass"``) as the nominal values a task scales."""
    return {name: np.array(getattr(mj_model, name), copy=True) for name in names}


def check_action(action: Any, shape: tuple[int, ...], env_name: str) -> np.ndarray:
    """Return ``action`` as a float array, or raise ValueError naming the expected shape or the NaN/inf.

    Args:
        action: what the caller passed to ``step``.
        shape: the action space's shape.
        env_name: used in the message.
    """
    arr = np.asarray(action, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{env_name}: action must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{env_name}: action contains NaN or inf: {arr}")
    return arr


class TaskEnvMixin:
    """Task handling for a MuJoCo environment of a :class:`TaskFamily`.

    The subclass sets ``family`` and ``apply_task`` (class attributes), calls :meth:`_init_task` at the end of its
    ``__init__`` with the field names its family scales, and calls :meth:`_checked_action` at the top of ``step``
    and :meth:`_with_task` on the info dicts it returns.
    """

    family: TaskFamily
    apply_task: ApplyTask
    model: mujoco.MjModel  # provided by MujocoEnv

    def _init_task(self, fields: tuple[str, ...], task: TaskParams | Mapping[str, float] | None = None) -> None:
        self._nominal = copy_model_fields(self.model, fields)
        self._action_shape = self.action_space.shape
        if len(self._action_shape) != 1:
            raise ValueError(f"{self.family.env_id}: TaskEnvMixin expects a 1-D action space, got {self._action_shape}")
        self._task = self.family.nominal()
        if task is not None:
            self.task = task

    @property
    def task(self) -> TaskParams:
        """The current task (applied to the MuJoCo model)."""
        return self._task

    @task.setter
    def task(self, task: TaskParams | Mapping[str, float]) -> None:
        task = self.family.validate(task)
        type(self).apply_task(self.model, self._nominal, task)
        self._task = task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # noqa: D102
        if options and options.get("task") is not None:
            self.task = options["task"]
        obs, info = super().reset(seed=seed, options=options)
        return obs, self._with_task(info)

    def _with_task(self, info: dict[str, Any]) -> dict[str, Any]:
        info["task"] = self._task.as_dict()
        return info

    def step(self, action: Any):  # noqa: D102
        # For envs whose own step does not check actions or report the task (juggler and locomotion envs override
        # step and call the two helpers themselves).
        obs, reward, terminated, truncated, info = super().step(self._checked_action(action))
        return obs, reward, terminated, truncated, self._with_task(info)

    def _checked_action(self, action: Any) -> np.ndarray:
        # Fast path for the usual call, a float vector of the right shape: one C-level dot product is finite iff
        # every entry is (an overflow of a huge finite action takes the slow path). Against a ~10 µs step this
        # matters; anything else goes through check_action's full, message-producing checks.
        if (
            type(action) is np.ndarray
            and action.shape == self._action_shape
            and action.dtype.kind == "f"
            and math.isfinite(action.dot(action))
        ):
            return action
        return check_action(action, self._action_shape, self.family.env_id)
