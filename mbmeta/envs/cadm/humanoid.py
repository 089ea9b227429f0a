"""CaDM's SlimHumanoid (``cadm/envs/slim_humanoid_env.py``, after mbbl's humanoid): mass and damping scales.

The Humanoid MJCF Gymnasium ships is CaDM's file unchanged; 5 MuJoCo steps of 0.003 s (RK4) per env step
(``dt = 0.015``); 1000-step episodes; it never terminates (falling only loses the alive bonus).

- Observation ``[45]``: ``qpos[2:]`` (22) and ``qvel`` (23).
- Action: ``[-1, 1]^17``, mapped to the actuators' ``[-0.4, 0.4]`` (CaDM's ``NormalizedEnv``).
- Reward: ``(0.25 / 0.015) · obs[22] - 0.1 ‖ctrl‖² + 5 · [1 <= obs'[0] <= 2]``: the root's x-velocity *before*
  the step (``obs[22] = qvel[0]``), the applied control ``ctrl = 0.4 a``, and an alive bonus while the torso
  height after the step is within [1, 2] m.
- Start: ``qpos, qvel = init + U(-0.01, 0.01)``.
- Task: every body's mass × ``mass_scale`` (``body_mass`` only, as CaDM) and every joint's damping ×
  ``damping_scale``, drawn independently from the split's set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.humanoid_v5 import DEFAULT_CAMERA_CONFIG
from torch import Tensor

from mbmeta.envs.cadm.base import (
    SOURCE,
    ReferenceFamily,
    ReferenceMujocoEnv,
    choice_region,
    scale_action_torch,
    union_of_regions,
)
from mbmeta.envs.family import Condition, Parameter
from mbmeta.envs.registry import register_family
from mbmeta.types import TaskParams

ASSET = "humanoid.xml"  # Gymnasium's copy, identical to CaDM's
FRAME_SKIP = 5
OBS_DIM = 45
ACTION_DIM = 17
VELOCITY_WEIGHT = 0.25 / 0.015  # CaDM's constant (0.25 per unit of displacement over its 0.015 s step)
VELOCITY_INDEX = 22  # obs index of qvel[0]
CTRL_COST_WEIGHT = 0.1
ALIVE_REWARD = 5.0
ALIVE_Z_RANGE = (1.0, 2.0)  # inclusive
CTRL_LIMIT = 0.4  # every actuator's ctrlrange is [-0.4, 0.4] (checked at env construction)
_CTRL_LOW, _CTRL_HIGH = np.full(ACTION_DIM, -CTRL_LIMIT), np.full(ACTION_DIM, CTRL_LIMIT)

_TRAIN_SCALES = (0.8, 0.9, 1.0, 1.15, 1.25)


def _pair(low: float, high: float) -> dict:
    return choice_region(mass_scale=(low, high), damping_scale=(low, high))


class CaDMSlimHumanoidFamily(ReferenceFamily):
    """CaDM's SlimHumanoid: mass and damping scales drawn independently from CaDM's sets."""

    name = "cadm_slim_humanoid"
    env_id = "mbmeta/CaDMSlimHumanoid-v0"
    description = "CaDM reference SlimHumanoid: body mass and joint damping scales"
    reference = f"{SOURCE}: cadm/envs/slim_humanoid_env.py, cadm/envs/config.py ('slim_humanoid')"
    observation_size = OBS_DIM
    action_size = ACTION_DIM
    parameters = (
        Parameter("mass_scale", 1.0, "factor on every body's mass (body_mass only, as CaDM)"),
        Parameter("damping_scale", 1.0, "factor on every joint's damping", strict=False),
    )
    train = (choice_region(mass_scale=_TRAIN_SCALES, damping_scale=_TRAIN_SCALES),)
    conditions = (
        Condition("c0", "extreme", (_pair(0.4, 0.5),)),
        Condition("c1", "moderate", (_pair(0.6, 0.7),)),
        Condition("c2", "moderate", (_pair(1.5, 1.6),)),
        Condition("c3", "extreme", (_pair(1.7, 1.8),)),
    )
    test = union_of_regions(conditions)
    protocol_episodes = 10
    episode_steps = 1000
    notes = (
        "Reproduces CaDM. Differences: MuJoCo 3 (CaDM: MuJoCo 2.0 via mujoco-py). CaDM's planning reward tested "
        "the alive condition on obs[1] (a quaternion entry, so it never gave the bonus); this family's reward is "
        "the env's: the torso height after the step, +5 when alive."
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``16.67 · obs[22] - 0.1 ‖0.4 a‖² + 5 · [1 <= obs'[0] <= 2]``: ``[*S, 45], [*S, 17], [*S, 45] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        ctrl = scale_action_torch(action.to(next_obs.dtype), _CTRL_LOW, _CTRL_HIGH)
        z = next_obs[..., 0]
        alive = ((z >= ALIVE_Z_RANGE[0]) & (z <= ALIVE_Z_RANGE[1])).to(next_obs.dtype)
        forward = VELOCITY_WEIGHT * obs[..., VELOCITY_INDEX]
        return forward - CTRL_COST_WEIGHT * ctrl.square().sum(-1) + ALIVE_REWARD * alive

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Never: ``[*S, 45], [*S, 17], [*S, 45] -> [*S]`` all False."""
        self.check_shapes(obs, action, next_obs)
        return self.never(next_obs)


CADM_SLIM_HUMANOID = register_family(CaDMSlimHumanoidFamily(), f"{__name__}:CaDMSlimHumanoidEnv")


def apply_mass_and_damping(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """``body_mass = nominal × mass_scale`` and ``dof_damping = nominal × damping_scale`` (inertia untouched)."""
    mj_model.body_mass[:] = nominal["body_mass"] * task["mass_scale"]
    mj_model.dof_damping[:] = nominal["dof_damping"] * task["damping_scale"]


class CaDMSlimHumanoidEnv(ReferenceMujocoEnv):
    """``mbmeta/CaDMSlimHumanoid-v0`` (see the module docstring).

    Args:
        task: initial task (the nominal one if None).
        **kwargs: rendering arguments of ``MujocoEnv`` (``render_mode``, ``width``, ``height``, ...).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 67}
    family = CADM_SLIM_HUMANOID
    apply_task = staticmethod(apply_mass_and_damping)
    task_fields = ("body_mass", "dof_damping")

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("default_camera_config", DEFAULT_CAMERA_CONFIG)
        super().__init__(ASSET, FRAME_SKIP, OBS_DIM, task, **kwargs)
        if not (np.array_equal(self._ctrl_low, _CTRL_LOW) and np.array_equal(self._ctrl_high, _CTRL_HIGH)):
            raise RuntimeError(f"{ASSET}: actuator ctrlrange is not ±{CTRL_LIMIT} as the family's reward assumes")

    def _get_obs(self) -> np.ndarray:
        return np.concatenate((self.data.qpos[2:], self.data.qvel))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``[17]`` actions in ``[-1, 1]`` (controls ``0.4 a``) for ``dt = 0.015`` s.

        Returns:
            ``(obs [45], reward (module docstring), terminated=False, truncated=False, info)``.
        """
        ctrl = self._control(action)
        velocity_before = float(self.data.qvel[0])
        self._step_mujoco_simulation(ctrl, self.frame_skip)
        z = float(self.data.qpos[2])
        alive = ALIVE_Z_RANGE[0] <= z <= ALIVE_Z_RANGE[1]
        reward = VELOCITY_WEIGHT * velocity_before - CTRL_COST_WEIGHT * float(np.square(ctrl).sum())
        reward += ALIVE_REWARD * float(alive)
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, False, False, self._with_task({})

    def reset_model(self) -> np.ndarray:
        """``qpos, qvel = init + U(-0.01, 0.01)`` from the env's seeded generator."""
        qpos = self.init_qpos + self.np_random.uniform(-0.01, 0.01, size=self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-0.01, 0.01, size=self.model.nv)
        self.set_state(qpos, qvel)
        return self._get_obs()
