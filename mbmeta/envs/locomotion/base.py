"""What the locomotion families share: the step's forward velocity in the observation, and exact torch rewards.

Gymnasium's forward reward is the x-displacement of the step divided by ``dt``; the x-position is not in the
observation, so no function of ``(obs, action, next_obs)`` could reproduce it. Every locomotion environment here
therefore appends that very quantity (Gymnasium's own ``info["x_velocity"]``) as the last observation element; after
a reset, before any step, that element holds the root's instantaneous x-velocity ``qvel[0]``. The reward the
environment returns is Gymnasium's, term for term (minus the contact cost where noted), and the family's torch
``reward`` recomputes it from ``next_obs[..., -1]`` and the action. The Gymnasium arguments that define the
reward and the observation layout are fixed, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import utils
from gymnasium.spaces import Box
from torch import Tensor

from mbmeta.envs.family import Region, TaskFamily, TaskParams
from mbmeta.envs.task_env import TaskEnvMixin

# Gymnasium constructor arguments a user may still set: they change neither the observation layout nor the reward,
# so the family's torch reward stays exact. Every other argument of the Gymnasium class is fixed here.
FREE_GYM_KWARGS: frozenset[str] = frozenset(
    {"self", "kwargs", "frame_skip", "reset_noise_scale", "default_camera_config"}
)


class LocomotionFamily(TaskFamily):
    """A task family over a Gymnasium v5 locomotion robot.

    Attributes:
        bare_env_id: the Gymnasium environment this family extends (for step-time comparisons).
        obs_dim: O, the observation size (Gymnasium's plus the appended forward velocity).
        action_dim: A, the action size.
        extra_splits: further named splits (e.g. ``"test_moderate"``), each a subset of the test split.
    """

    bare_env_id: str = ""
    obs_dim: int = 0
    action_dim: int = 0
    extra_splits: Mapping[str, tuple[Region, ...]] = {}

    def make_env(self, **kwargs: Any) -> gym.Env:
        """Build one environment (``gymnasium.make(self.env_id, **kwargs)``, with its time limit)."""
        return gym.make(self.env_id, **kwargs)

    def regions(self, split: str) -> tuple[Region, ...]:
        """The regions of a split: train, test, validation or one of :attr:`extra_splits`; ValueError names them."""
        if split in self.extra_splits:
            return self.extra_splits[split]
        if split in ("train", "test") or (split == "validation" and self.validation):
            return super().regions(split)
        valid = ["train", "test", *(["validation"] if self.validation else []), *self.extra_splits]
        raise ValueError(f"family {self.name!r}: unknown split {split!r}; valid splits are {valid}")

    def check_shapes(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> None:
        """Raise ValueError unless ``obs, next_obs`` are ``[*S, O]`` and ``action`` is ``[*S, A]``."""
        if obs.shape[-1:] != (self.obs_dim,) or next_obs.shape != obs.shape:
            raise ValueError(
                f"family {self.name!r}: obs and next_obs must both have shape [*S, {self.obs_dim}], "
                f"got {tuple(obs.shape)} and {tuple(next_obs.shape)}"
            )
        if action.shape != (*obs.shape[:-1], self.action_dim):
            raise ValueError(
                f"family {self.name!r}: action must have shape [*S, {self.action_dim}] with obs's leading dims "
                f"{tuple(obs.shape[:-1])}, got {tuple(action.shape)}"
            )


class CrippledFamilyMixin:
    """Validation of a family whose single parameter is the index of a disabled limb (``-1``: intact robot)."""

    name: str
    limb_count: int = 0
    parameters: tuple

    def validate(self, task: TaskParams | Mapping[str, float]) -> TaskParams:
        """Check the task as :meth:`TaskFamily.validate` does, and that the index names an existing limb."""
        task = super().validate(task)
        name = self.parameters[0].name
        if not -1 <= task[name] < self.limb_count:
            raise ValueError(
                f"family {self.name!r}: parameter {name!r} must be -1 (intact) or one of "
                f"0..{self.limb_count - 1}, got {task[name]:g}"
            )
        return task


class LocomotionEnvMixin(TaskEnvMixin):
    """Task handling plus the appended forward velocity, for a Gymnasium v5 locomotion env.

    Goes first in the bases, before the Gymnasium class: ``class HalfCheetahMassEnv(LocomotionEnvMixin,
    HalfCheetahEnv)``. Subclasses set ``family``, ``apply_task`` and ``task_fields`` and call :meth:`_init_locomotion`
    at the end of their ``__init__``. The Gymnasium class must report ``info["x_velocity"]`` (all v5 locomotion
    envs do): it becomes the last observation element.
    """

    task_fields: tuple[str, ...] = ()

    @staticmethod
    def _reject_fixed_kwargs(gym_class: type, kwargs: Mapping[str, Any], env_name: str) -> None:
        """Raise TypeError if ``kwargs`` sets a Gymnasium argument that would change the obs layout or reward."""
        fixed = set(inspect.signature(gym_class.__init__).parameters) - FREE_GYM_KWARGS
        bad = sorted(fixed & set(kwargs))
        if bad:
            raise TypeError(
                f"{env_name}: {bad} are fixed so that the family's reward function stays exact; "
                f"settable Gymnasium arguments are {sorted(FREE_GYM_KWARGS - {'self', 'kwargs'})} "
                f"and MujocoEnv's rendering arguments"
            )

    def _init_locomotion(self, task: TaskParams | Mapping[str, float] | None, **init_kwargs: Any) -> None:
        """Widen the observation space by the forward velocity, record pickling args, and set the task."""
        base_size = self.observation_space.shape[0]
        self.observation_space = Box(low=-np.inf, high=np.inf, shape=(base_size + 1,), dtype=np.float64)
        self.observation_structure["x_velocity"] = 1
        # Gymnasium's EzPickle recorded the parent's positional args; re-record ours so pickling rebuilds this class.
        utils.EzPickle.__init__(self, task=task, **init_kwargs)
        self._init_task(self.task_fields, task)

    def _get_obs(self) -> np.ndarray:
        obs = super()._get_obs()
        # Filling a preallocated array is about twice as fast as concatenating. The last slot is overwritten by
        # step() with the step's x-velocity; at reset, when no step has been taken, it holds the root's
        # instantaneous x-velocity.
        out = np.empty(obs.shape[0] + 1)
        out[:-1] = obs
        out[-1] = self.data.qvel[0]
        return out

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Gymnasium's step (same reward and termination) with the task in ``info`` and the action checked.

        Args:
            action: ``[A]`` finite values (ValueError otherwise).

        Returns:
            ``(obs [O], reward, terminated, truncated, info)`` as Gymnasium's, ``obs[-1]`` being the x-velocity.
        """
        action = self._checked_action(action)
        obs, reward, terminated, truncated, info = super().step(action)
        # Gymnasium's own x_velocity (the one its forward reward uses), so the torch reward matches bit for bit.
        obs[-1] = info["x_velocity"]
        return obs, reward, terminated, truncated, self._with_task(info)
