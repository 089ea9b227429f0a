"""Hopper mass family (T-MCL splits).

Observation ``[12]``: Gymnasium Hopper-v5's 11 (``qpos[1:]``, ``qvel`` clipped to ±10) then the step's x-velocity.
Reward: Gymnasium's ``x_velocity + 1·healthy - 0.001 ‖action‖²``; terminates when unhealthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from torch import Tensor

from mbmeta.envs.family import Choice, Parameter, TaskParams
from mbmeta.envs.locomotion import physics
from mbmeta.envs.locomotion.base import LocomotionEnvMixin, LocomotionFamily
from mbmeta.envs.registry import register_family

FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 1e-3
HEALTHY_REWARD = 1.0
HEALTHY_STATE_RANGE = (-100.0, 100.0)
HEALTHY_Z_MIN = 0.7  # Gymnasium's upper bound is +inf
HEALTHY_ANGLE_RANGE = (-0.2, 0.2)


def healthy(next_obs: Tensor) -> Tensor:
    """The env's health test from the observation: ``[*S, 12] -> [*S]`` bool.

    ``next_obs[..., 0]`` is the torso height, ``[..., 1]`` its angle, ``[..., 1:5]`` the joint positions
    ``qpos[2:]`` that Gymnasium bounds by ±100.
    """
    z, angle, joints = next_obs[..., 0], next_obs[..., 1], next_obs[..., 1:5]
    ok_joints = ((joints > HEALTHY_STATE_RANGE[0]) & (joints < HEALTHY_STATE_RANGE[1])).all(-1)
    return ok_joints & (z > HEALTHY_Z_MIN) & (angle > HEALTHY_ANGLE_RANGE[0]) & (angle < HEALTHY_ANGLE_RANGE[1])


class HopperMassFamily(LocomotionFamily):
    """Hopper with every body's mass (and inertia) scaled."""

    name = "hopper_mass"
    env_id = "mbmeta/HopperMass-v0"
    bare_env_id = "Hopper-v5"
    description = "Hopper, body mass scale (T-MCL splits)"
    obs_dim = 12
    action_dim = 3
    parameters = (Parameter("mass_scale", 1.0, "factor on every body's mass and inertia"),)
    train = ({"mass_scale": Choice((0.5, 0.75, 1.0, 1.25, 1.5))},)
    test = ({"mass_scale": Choice((0.25, 0.375, 1.75, 2.0))},)
    notes = (
        "Observation is Hopper-v5's 11 values plus the step's x-velocity (exactly Gymnasium's info['x_velocity']) "
        "as element 11, so the forward reward is a function of next_obs. Health drops Gymnasium's ±100 bound on "
        "the raw joint velocities (the observation clips them to ±10, so the bound cannot be recomputed from it); "
        "the height, angle and joint-position bounds are Gymnasium's. Mass scale multiplies body_mass and "
        "body_inertia (uniform density)."
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``x_velocity + healthy - 0.001 ‖action‖²``: ``[*S, 12], [*S, 3], [*S, 12] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        alive = healthy(next_obs).to(next_obs.dtype)
        forward = FORWARD_REWARD_WEIGHT * next_obs[..., -1]
        return forward + HEALTHY_REWARD * alive - CTRL_COST_WEIGHT * action.square().sum(-1)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Unhealthy after the step: ``[*S, 12], [*S, 3], [*S, 12] -> [*S]`` bool."""
        self.check_shapes(obs, action, next_obs)
        return ~healthy(next_obs)


HOPPER_MASS = HopperMassFamily()


class HopperMassEnv(LocomotionEnvMixin, HopperEnv):
    """``mbmeta/HopperMass-v0``: Hopper-v5 with a mass scale and the step's x-velocity in the observation."""

    family = HOPPER_MASS
    apply_task = staticmethod(physics.apply_mass)
    task_fields = physics.MASS_FIELDS

    def __init__(
        self,
        task: TaskParams | Mapping[str, float] | None = None,
        frame_skip: int = 4,
        reset_noise_scale: float = 5e-3,
        **kwargs: Any,
    ) -> None:
        """Build the env.

        Args:
            task: initial task (default: the family's nominal task).
            frame_skip: MuJoCo steps per env step (Gymnasium's default).
            reset_noise_scale: scale of the initial-state noise (Gymnasium's default).
            **kwargs: rendering arguments of ``MujocoEnv``; reward-defining Gymnasium arguments raise TypeError.
        """
        self._reject_fixed_kwargs(HopperEnv, kwargs, self.family.env_id)
        super().__init__(frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **kwargs)
        self._init_locomotion(task, frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **kwargs)

    @property
    def is_healthy(self) -> bool:
        """Gymnasium's health test without its bound on the raw joint velocities, so that it is a function of obs.

        The observation clips velocities to ±10 (as Gymnasium's does), so a ±100 bound on them could not be
        recomputed from it.
        """
        z, angle = self.data.qpos[1:3]
        joints = self.data.qpos[2:]
        low, high = HEALTHY_STATE_RANGE
        return bool(
            ((low < joints) & (joints < high)).all()
            and HEALTHY_Z_MIN < z
            and HEALTHY_ANGLE_RANGE[0] < angle < HEALTHY_ANGLE_RANGE[1]
        )


register_family(HOPPER_MASS, f"{__name__}:HopperMassEnv")
