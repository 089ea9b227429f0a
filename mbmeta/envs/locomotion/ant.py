"""Ant families: legs' mass (CaDM) and a crippled leg.

Observation ``[28]``: Gymnasium Ant-v5's 27 position/velocity values (``qpos[2:]``, ``qvel``; the contact forces
are left out) then the step's x-velocity. Reward: Gymnasium's ``x_velocity + 1·healthy - 0.5 ‖action‖²`` without
the contact cost; terminates when unhealthy.

Legs are numbered 0-3 in model order (the torso's children): 0 ``front_left_leg``, 1 ``front_right_leg``,
2 ``back_leg``, 3 ``right_back_leg``; CaDM's "legs 1-2" are legs 0 and 1 here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from torch import Tensor

from mbmeta.envs.family import Choice, Parameter, TaskParams
from mbmeta.envs.locomotion import physics
from mbmeta.envs.locomotion.base import CrippledFamilyMixin, LocomotionEnvMixin, LocomotionFamily
from mbmeta.envs.registry import register_family

FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.5
HEALTHY_REWARD = 1.0
HEALTHY_Z_RANGE = (0.2, 1.0)  # inclusive, as in Gymnasium
MAIN_BODY = 1  # the torso: Gymnasium measures progress by its x-position

_OBS_NOTE = (
    "Observation is Ant-v5's 27 position/velocity values without the 78 contact forces "
    "(include_cfrc_ext_in_observation=False), plus the step's x-velocity (exactly Gymnasium's info['x_velocity']) "
    "as element 27. The contact cost (weight 5e-4) is dropped, since contact forces are not observed: "
    "reward = x_velocity + healthy - 0.5 |a|^2."
)


def healthy(next_obs: Tensor) -> Tensor:
    """Gymnasium's ``is_healthy`` from the observation: ``[*S, 28] -> [*S]`` bool (all finite, 0.2 <= z <= 1)."""
    z = next_obs[..., 0]
    return torch.isfinite(next_obs).all(-1) & (z >= HEALTHY_Z_RANGE[0]) & (z <= HEALTHY_Z_RANGE[1])


class AntFamily(LocomotionFamily):
    """Ant-v5 reward (without contact cost) and termination, as batched torch functions."""

    bare_env_id = "Ant-v5"
    obs_dim = 28
    action_dim = 8

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``x_velocity + healthy - 0.5 ‖action‖²``: ``[*S, 28], [*S, 8], [*S, 28] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        alive = healthy(next_obs).to(next_obs.dtype)
        forward = FORWARD_REWARD_WEIGHT * next_obs[..., -1]
        return forward + HEALTHY_REWARD * alive - CTRL_COST_WEIGHT * action.square().sum(-1)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Unhealthy after the step: ``[*S, 28], [*S, 8], [*S, 28] -> [*S]`` bool."""
        self.check_shapes(obs, action, next_obs)
        return ~healthy(next_obs)


class AntLegMassFamily(AntFamily):
    """Ant whose legs 0-1 weigh × s and legs 2-3 × 1/s."""

    name = "ant_leg_mass"
    env_id = "mbmeta/AntLegMass-v0"
    description = "Ant, legs 1-2 mass × s and legs 3-4 × 1/s (CaDM splits)"
    parameters = (Parameter("leg_mass_scale", 1.0, "s: legs 0-1 mass and inertia × s, legs 2-3 × 1/s"),)
    train = ({"leg_mass_scale": Choice((0.85, 0.90, 0.95, 1.0))},)
    test = ({"leg_mass_scale": Choice(tuple(np.round(np.arange(0.20, 0.601, 0.05), 2)))},)
    notes = (
        _OBS_NOTE + " CaDM states the test range as 0.20 ... 0.60; here it is the discrete set {0.20, 0.25, ..., "
        "0.60}. Mass scale multiplies body_mass and body_inertia of every body of a leg (uniform density)."
    )


class CrippledAntFamily(CrippledFamilyMixin, AntFamily):
    """Ant with one leg's actuators (hip and ankle) disabled."""

    name = "crippled_ant"
    env_id = "mbmeta/CrippledAnt-v0"
    description = "Ant, one leg's actuators disabled"
    limb_count = 4
    parameters = (
        Parameter(
            "crippled_leg",
            -1.0,
            "index of the leg whose hip and ankle actuators are disabled (0-3, model order); -1 intact",
            minimum=-1.0,
            strict=False,
            integer=True,
        ),
    )
    train = ({"crippled_leg": Choice((0, 1, 2))},)
    test = ({"crippled_leg": Choice((3,))},)
    notes = (
        _OBS_NOTE + " The crippled leg's hip and ankle gears are zeroed: their action entries move nothing but "
        "still pay the control cost. The nominal task (-1) is the intact robot, in neither split; the crippled "
        "leg renders red."
    )


ANT_LEG_MASS = AntLegMassFamily()
CRIPPLED_ANT = CrippledAntFamily()


class AntTaskEnv(LocomotionEnvMixin, AntEnv):
    """Ant-v5 with a task, no contact forces or cost, and the step's x-velocity in the observation."""

    def __init__(
        self,
        task: TaskParams | Mapping[str, float] | None = None,
        frame_skip: int = 5,
        reset_noise_scale: float = 0.1,
        **kwargs: Any,
    ) -> None:
        """Build the env.

        Args:
            task: initial task (default: the family's nominal task).
            frame_skip: MuJoCo steps per env step (Gymnasium's default).
            reset_noise_scale: scale of the initial-state noise (Gymnasium's default).
            **kwargs: rendering arguments of ``MujocoEnv``; reward-defining Gymnasium arguments raise TypeError.
        """
        self._reject_fixed_kwargs(AntEnv, kwargs, self.family.env_id)
        super().__init__(
            frame_skip=frame_skip,
            reset_noise_scale=reset_noise_scale,
            contact_cost_weight=0.0,
            include_cfrc_ext_in_observation=False,
            main_body=MAIN_BODY,
            **kwargs,
        )
        self._init_locomotion(task, frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **kwargs)


class AntLegMassEnv(AntTaskEnv):
    """``mbmeta/AntLegMass-v0``."""

    family = ANT_LEG_MASS
    apply_task = staticmethod(physics.apply_leg_mass)
    task_fields = physics.MASS_FIELDS


class CrippledAntEnv(AntTaskEnv):
    """``mbmeta/CrippledAnt-v0``."""

    family = CRIPPLED_ANT
    apply_task = staticmethod(physics.apply_crippled_leg)
    task_fields = physics.CRIPPLE_FIELDS


register_family(ANT_LEG_MASS, f"{__name__}:AntLegMassEnv")
register_family(CRIPPLED_ANT, f"{__name__}:CrippledAntEnv")
