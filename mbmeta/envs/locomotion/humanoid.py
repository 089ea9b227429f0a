"""SlimHumanoid: Humanoid with the slim observation, mass and damping scales (CaDM splits).

Observation ``[46]``: Gymnasium Humanoid-v5's ``qpos[2:]`` (22) and ``qvel`` (23), without ``cinert``, ``cvel``,
``qfrc_actuator`` and ``cfrc_ext``, then the step's centre-of-mass x-velocity. Reward: Gymnasium's
``1.25 x_velocity + 5·healthy - 0.1 ‖action‖²`` without the contact cost; terminates when unhealthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv
from torch import Tensor

from mbmeta.envs.family import Choice, Parameter, TaskParams
from mbmeta.envs.locomotion import physics
from mbmeta.envs.locomotion.base import LocomotionEnvMixin, LocomotionFamily
from mbmeta.envs.registry import register_family

FORWARD_REWARD_WEIGHT = 1.25
CTRL_COST_WEIGHT = 0.1
HEALTHY_REWARD = 5.0
HEALTHY_Z_RANGE = (1.0, 2.0)  # exclusive, as in Gymnasium

TRAIN_SCALES = Choice((0.8, 0.9, 1.0, 1.15, 1.25))
TEST_SCALES = Choice((0.4, 0.5, 0.6, 0.7, 1.5, 1.6, 1.7, 1.8))


def healthy(next_obs: Tensor) -> Tensor:
    """Gymnasium's ``is_healthy`` (1 < torso z < 2) from the observation: ``[*S, 46] -> [*S]`` bool."""
    z = next_obs[..., 0]
    return (z > HEALTHY_Z_RANGE[0]) & (z < HEALTHY_Z_RANGE[1])


class SlimHumanoidFamily(LocomotionFamily):
    """Humanoid with every body's mass (and inertia) and every joint's damping scaled."""

    name = "slim_humanoid"
    env_id = "mbmeta/SlimHumanoid-v0"
    bare_env_id = "Humanoid-v5"
    description = "Humanoid (slim observation), body mass and joint damping scales (CaDM splits)"
    obs_dim = 46
    action_dim = 17
    parameters = (
        Parameter("mass_scale", 1.0, "factor on every body's mass and inertia"),
        Parameter("damping_scale", 1.0, "factor on every joint's damping", strict=False),
    )
    train = ({"mass_scale": TRAIN_SCALES, "damping_scale": TRAIN_SCALES},)
    test = ({"mass_scale": TEST_SCALES, "damping_scale": TEST_SCALES},)
    notes = (
        "Observation is Humanoid-v5's qpos[2:] and qvel (include_cinert/cvel/qfrc_actuator/cfrc_ext_in_observation"
        "=False) plus the step's centre-of-mass x-velocity (exactly Gymnasium's info['x_velocity']) as element 45. "
        "The contact cost (weight 5e-7) is dropped, since contact forces are not observed: reward = "
        "1.25 x_velocity + 5 healthy - 0.1 |a|^2. Mass and damping are drawn independently from the same split's "
        "set; mass scale multiplies body_mass and body_inertia (uniform density)."
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``1.25 x_velocity + 5 healthy - 0.1 ‖action‖²``: ``[*S, 46], [*S, 17], [*S, 46] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        alive = healthy(next_obs).to(next_obs.dtype)
        forward = FORWARD_REWARD_WEIGHT * next_obs[..., -1]
        return forward + HEALTHY_REWARD * alive - CTRL_COST_WEIGHT * action.square().sum(-1)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Unhealthy after the step: ``[*S, 46], [*S, 17], [*S, 46] -> [*S]`` bool."""
        self.check_shapes(obs, action, next_obs)
        return ~healthy(next_obs)


SLIM_HUMANOID = SlimHumanoidFamily()


class SlimHumanoidEnv(LocomotionEnvMixin, HumanoidEnv):
    """``mbmeta/SlimHumanoid-v0``: Humanoid-v5, slim observation plus the step's centre-of-mass x-velocity."""

    family = SLIM_HUMANOID
    apply_task = staticmethod(physics.apply_mass_and_damping)
    task_fields = physics.MASS_FIELDS + physics.DAMPING_FIELDS

    def __init__(
        self,
        task: TaskParams | Mapping[str, float] | None = None,
        frame_skip: int = 5,
        reset_noise_scale: float = 1e-2,
        **kwargs: Any,
    ) -> None:
        """Build the env.

        Args:
            task: initial task (default: the family's nominal task).
            frame_skip: MuJoCo steps per env step (Gymnasium's default).
            reset_noise_scale: scale of the initial-state noise (Gymnasium's default).
            **kwargs: rendering arguments of ``MujocoEnv``; reward-defining Gymnasium arguments raise TypeError.
        """
        self._reject_fixed_kwargs(HumanoidEnv, kwargs, self.family.env_id)
        super().__init__(
            frame_skip=frame_skip,
            reset_noise_scale=reset_noise_scale,
            contact_cost_weight=0.0,
            include_cinert_in_observation=False,
            include_cvel_in_observation=False,
            include_qfrc_actuator_in_observation=False,
            include_cfrc_ext_in_observation=False,
            **kwargs,
        )
        self._init_locomotion(task, frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **kwargs)


register_family(SLIM_HUMANOID, f"{__name__}:SlimHumanoidEnv")
