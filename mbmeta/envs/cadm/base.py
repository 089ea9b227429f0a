"""What the CaDM reference families share: conditions, the normalised action, shape checks and a MuJoCo env base.

CaDM (Lee, Seo et al., ICML 2020; github.com/younggyoseo/CaDM) wraps every environment in ``NormalizedEnv``: the
agent acts in ``[-1, 1]^A`` and the wrapper maps ``a`` to ``low + (a + 1)(high - low) / 2`` of the wrapped env's
action box, clipped to that box. The reference envs expose the same normalised box, and :func:`scale_action` /
:func:`scale_action_torch` are that map, so the torch rewards see the same control the env applied.

Test sets: CaDM evaluates each test range of ``cadm/envs/config.py`` (``test_range[i]``) as its own condition
``c<i>``, building an env whose reset draws every parameter uniformly from that condition's value list. The inner
conditions (nearer the train values) are "moderate", the outer ones "extreme"; the test split is their union.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box
from torch import Tensor

from mbmeta.envs.family import Choice, Condition, Region, TaskFamily
from mbmeta.envs.task_env import TaskEnvMixin
from mbmeta.types import TaskParams

SOURCE = "github.com/younggyoseo/CaDM"


def choice_region(**values: Sequence[float]) -> Region:
    """A region giving each named parameter a discrete set: ``choice_region(mass=(0.2, 0.4), length=(1.6, 1.8))``."""
    return {name: Choice(tuple(v)) for name, v in values.items()}


def union_of_regions(conditions: Sequence[Condition]) -> tuple[Region, ...]:
    """The test split: every condition's regions, in condition order."""
    return tuple(region for condition in conditions for region in condition.regions)


def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """CaDM's ``NormalizedEnv`` map from ``[-1, 1]`` to ``[low, high]`` (then clipped to it): ``[A] -> [A]`` float64."""
    action = np.asarray(action, dtype=np.float64)  # float64 throughout: a box of [-1, 1] then maps a to a exactly
    return np.clip(low + (action + 1.0) * (high - low) / 2.0, low, high)


def scale_action_torch(action: Tensor, low: np.ndarray, high: np.ndarray) -> Tensor:
    """:func:`scale_action` in torch: ``[*S, A] -> [*S, A]`` (dtype and device of ``action``)."""
    lo = torch.as_tensor(low, dtype=action.dtype, device=action.device)
    hi = torch.as_tensor(high, dtype=action.dtype, device=action.device)
    return torch.minimum(torch.maximum(lo + (action + 1.0) * (hi - lo) / 2.0, lo), hi)


class ReferenceFamily(TaskFamily):
    """A family reproducing one of CaDM's environments (reward, termination, splits and test conditions).

    Attributes:
        observation_size: O, checked by :meth:`check_shapes`.
        action_size: A, checked by :meth:`check_shapes`.
        reference: the CaDM source the family reproduces (for the docs).
    """

    observation_size: int = 0
    action_size: int = 0
    reference: str = ""

    def make_env(self, **kwargs: Any) -> gym.Env:
        """``gymnasium.make(self.env_id, **kwargs)`` (with the family's time limit)."""
        return gym.make(self.env_id, **kwargs)

    def check_shapes(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> None:
        """Raise ValueError unless ``obs, next_obs`` are ``[*S, O]`` and ``action`` is ``[*S, A]``."""
        if obs.shape[-1:] != (self.observation_size,) or next_obs.shape != obs.shape:
            raise ValueError(
                f"family {self.name!r}: obs and next_obs must both have shape [*S, {self.observation_size}], "
                f"got {tuple(obs.shape)} and {tuple(next_obs.shape)}"
            )
        if action.shape != (*obs.shape[:-1], self.action_size):
            raise ValueError(
                f"family {self.name!r}: action must have shape [*S, {self.action_size}] with obs's leading dims "
                f"{tuple(obs.shape[:-1])}, got {tuple(action.shape)}"
            )

    def never(self, next_obs: Tensor) -> Tensor:
        """``[*S]`` all False, for families that never terminate."""
        return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


class ReferenceMujocoEnv(TaskEnvMixin, MujocoEnv):
    """A CaDM MuJoCo env: its task, the normalised ``[-1, 1]`` action box, and an unbounded observation box.

    Subclasses set ``family``, ``apply_task``, ``task_fields``, ``metadata`` (``render_fps = 1 / dt``) and implement
    ``step``, ``reset_model`` and ``_get_obs``; their ``step`` calls :meth:`_control` first.

    Args:
        model_path: the MJCF file.
        frame_skip: MuJoCo steps per env step.
        obs_dim: O.
        task: initial task (the nominal one if None).
        **kwargs: rendering arguments of ``MujocoEnv`` (``render_mode``, ``width``, ``height``, ...).
    """

    task_fields: tuple[str, ...] = ()

    def __init__(
        self,
        model_path: str,
        frame_skip: int,
        obs_dim: int,
        task: TaskParams | Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        observation_space = Box(low=-np.inf, high=np.inf, shape=(obs_dim,), dtype=np.float64)
        MujocoEnv.__init__(self, model_path, frame_skip, observation_space=observation_space, **kwargs)
        self._ctrl_low, self._ctrl_high = (np.array(b, dtype=np.float64) for b in self.model.actuator_ctrlrange.T)
        self.action_space = Box(low=-1.0, high=1.0, shape=(self.model.nu,), dtype=np.float32)
        self._init_task(self.task_fields, task)

    def _control(self, action: Any) -> np.ndarray:
        """Check the action (shape, NaN/inf) and map it from ``[-1, 1]`` to the actuators' range, as CaDM does."""
        return scale_action(self._checked_action(action), self._ctrl_low, self._ctrl_high)
