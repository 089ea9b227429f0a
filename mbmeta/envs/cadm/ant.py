"""CaDM's Ant (``cadm/envs/ant_env.py``): legs 1-2 weigh × s, legs 3-4 × 1/s.

The Ant MJCF Gymnasium ships is CaDM's file unchanged; 5 MuJoCo steps of 0.01 s (RK4) per env step
(``dt = 0.05``); 1000-step episodes; it never terminates (no health check).

- Observation ``[28]``: the torso's x-displacement over the step divided by ``dt`` (0 right after a reset), then
  ``qpos[2:]`` (13) and ``qvel`` (14); no contact forces.
- Reward: ``obs'[0] - 0.005 ‖a‖² + 0.05`` (a survival bonus that never stops; no contact cost). The actuators'
  range is ``[-1, 1]``, so CaDM's action normalisation only clips.
- Start: ``qpos = init + U(-0.1, 0.1)``, ``qvel = init + 0.1 N(0, 1)``.
- Task ``leg_mass_scale`` ``s``: ``body_mass`` (not inertia) of the bodies of legs 1 and 2 (the torso's first two
  children: front left and front right) × s, of legs 3 and 4 × 1/s. CaDM also scales the same legs' damping by a
  factor drawn from ``{1.0}``, i.e. never: that constant is left out. Test ``c0`` (extreme): s in
  ``{0.20, ..., 0.40}``; ``c1`` (moderate): s in ``{0.40, ..., 0.60}`` (0.40 is in both, as in CaDM).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.ant_v5 import DEFAULT_CAMERA_CONFIG
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
from mbmeta.envs.locomotion import physics
from mbmeta.envs.registry import register_family
from mbmeta.types import TaskParams

ASSET = "ant.xml"  # Gymnasium's copy, identical to CaDM's
FRAME_SKIP = 5
OBS_DIM = 28
ACTION_DIM = 8
CTRL_COST_WEIGHT = 0.005
SURVIVE_REWARD = 0.05
_CTRL_LOW, _CTRL_HIGH = -np.ones(ACTION_DIM), np.ones(ACTION_DIM)  # the actuators' ctrlrange in the MJCF


class CaDMAntFamily(ReferenceFamily):
    """CaDM's Ant with the legs' masses varied in opposite directions."""

    name = "cadm_ant"
    env_id = "mbmeta/CaDMAnt-v0"
    description = "CaDM reference Ant: legs 1-2 mass × s, legs 3-4 × 1/s"
    reference = f"{SOURCE}: cadm/envs/ant_env.py, cadm/envs/config.py ('ant')"
    observation_size = OBS_DIM
    action_size = ACTION_DIM
    parameters = (Parameter("leg_mass_scale", 1.0, "s: legs 1-2 body_mass × s, legs 3-4 × 1/s"),)
    train = (choice_region(leg_mass_scale=(0.85, 0.9, 0.95, 1.0)),)
    conditions = (
        Condition("c0", "extreme", (choice_region(leg_mass_scale=(0.2, 0.25, 0.3, 0.35, 0.4)),)),
        Condition("c1", "moderate", (choice_region(leg_mass_scale=(0.4, 0.45, 0.5, 0.55, 0.6)),)),
    )
    test = union_of_regions(conditions)
    protocol_episodes = 20
    episode_steps = 1000
    notes = (
        "Reproduces CaDM. Differences: MuJoCo 3 (CaDM: MuJoCo 2.0 via mujoco-py; contacts dominate the Ant, so "
        "expect the largest simulator effect here); CaDM's damping factor, always 1.0, is left out; the planner's "
        "reward is the env's (CaDM's planning reward used the previous step's velocity, obs[0])."
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``obs'[0] - 0.005 ‖clip(a)‖² + 0.05``: ``[*S, 28], [*S, 8], [*S, 28] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        ctrl = scale_action_torch(action.to(next_obs.dtype), _CTRL_LOW, _CTRL_HIGH)
        return next_obs[..., 0] - CTRL_COST_WEIGHT * ctrl.square().sum(-1) + SURVIVE_REWARD

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Never: ``[*S, 28], [*S, 8], [*S, 28] -> [*S]`` all False."""
        self.check_shapes(obs, action, next_obs)
        return self.never(next_obs)


CADM_ANT = register_family(CaDMAntFamily(), f"{__name__}:CaDMAntEnv")


def leg_bodies(mj_model: mujoco.MjModel) -> list[list[int]]:
    """Body ids of the four legs (the torso's children and their subtrees), in model order."""
    return physics.limbs(mj_model, "torso")


def apply_leg_mass(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """``body_mass``: legs 1-2 × s, legs 3-4 × 1/s, everything else nominal (inertia untouched, as CaDM)."""
    s = task["leg_mass_scale"]
    mass = nominal["body_mass"].copy()
    for k, leg in enumerate(leg_bodies(mj_model)):
        mass[leg] *= s if k < 2 else 1.0 / s
    mj_model.body_mass[:] = mass


class CaDMAntEnv(ReferenceMujocoEnv):
    """``mbmeta/CaDMAnt-v0`` (see the module docstring).

    Args:
        task: initial task (the nominal one if None).
        **kwargs: rendering arguments of ``MujocoEnv`` (``render_mode``, ``width``, ``height``, ...).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}
    family = CADM_ANT
    apply_task = staticmethod(apply_leg_mass)
    task_fields = ("body_mass",)

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("default_camera_config", DEFAULT_CAMERA_CONFIG)
        self._x_before = 0.0
        super().__init__(ASSET, FRAME_SKIP, OBS_DIM, task, **kwargs)
        self._torso = self.model.body("torso").id

    def _torso_x(self) -> float:
        # The torso frame's x as MuJoCo last computed it (xpos), as CaDM's get_body_com("torso") reads it.
        return float(self.data.xpos[self._torso, 0])

    def _get_obs(self) -> np.ndarray:
        out = np.empty(OBS_DIM)
        out[0] = (self._torso_x() - self._x_before) / self.dt
        out[1:14] = self.data.qpos[2:]
        out[14:] = self.data.qvel
        return out

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``[8]`` controls in ``[-1, 1]`` for ``dt = 0.05`` s.

        Returns:
            ``(obs [28], obs[0] - 0.005 ‖a‖² + 0.05, terminated=False, truncated=False, info)``.
        """
        ctrl = self._control(action)
        self._x_before = self._torso_x()
        self._step_mujoco_simulation(ctrl, self.frame_skip)
        obs = self._get_obs()
        reward = float(obs[0] - CTRL_COST_WEIGHT * np.square(ctrl).sum() + SURVIVE_REWARD)
        if self.render_mode == "human":
            self.render()
        return obs, reward, False, False, self._with_task({})

    def reset_model(self) -> np.ndarray:
        """``qpos = init + U(-0.1, 0.1)``, ``qvel = init + 0.1 N(0, 1)``; the first velocity reads 0."""
        qpos = self.init_qpos + self.np_random.uniform(-0.1, 0.1, size=self.model.nq)
        qvel = self.init_qvel + 0.1 * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        self._x_before = self._torso_x()
        return self._get_obs()
