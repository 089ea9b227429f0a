"""HalfCheetah families: body mass scale, joint damping scale (CaDM splits) and a crippled joint.

Observation ``[18]``: Gymnasium HalfCheetah-v5's 17 (``qpos[1:]``, ``qvel``) then the step's x-velocity.
Reward: Gymnasium's ``x_velocity - 0.1 ‖action‖²``; the cheetah never terminates.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import mujoco
import torch
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from torch import Tensor

from mbmeta.envs.family import Choice, Parameter, TaskParams
from mbmeta.envs.locomotion import physics
from mbmeta.envs.locomotion.base import CrippledFamilyMixin, LocomotionEnvMixin, LocomotionFamily
from mbmeta.envs.registry import register_family

FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.1

# CaDM's discrete splits, shared by the mass and damping families.
TRAIN_SCALES = Choice((0.75, 0.85, 1.0, 1.15, 1.25))
MODERATE_SCALES = Choice((0.4, 0.5, 1.5, 1.6))
EXTREME_SCALES = Choice((0.2, 0.3, 1.7, 1.8))
TEST_SCALES = Choice((0.2, 0.3, 0.4, 0.5, 1.5, 1.6, 1.7, 1.8))

_OBS_NOTE = (
    "Observation is HalfCheetah-v5's 17 values plus the step's x-velocity (x displacement / dt, exactly "
    "Gymnasium's info['x_velocity']) as element 17, so the forward reward is a function of next_obs; "
    "reward and termination are Gymnasium's unchanged."
)


class HalfCheetahFamily(LocomotionFamily):
    """HalfCheetah-v5 reward and (absent) termination, as batched torch functions."""

    bare_env_id = "HalfCheetah-v5"
    obs_dim = 18
    action_dim = 6

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``x_velocity - 0.1 ‖action‖²``: obs/next_obs ``[*S, 18]``, action ``[*S, 6]`` -> ``[*S]``."""
        self.check_shapes(obs, action, next_obs)
        return FORWARD_REWARD_WEIGHT * next_obs[..., -1] - CTRL_COST_WEIGHT * action.square().sum(-1)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Never: ``[*S, 18], [*S, 6], [*S, 18] -> [*S]`` all False."""
        self.check_shapes(obs, action, next_obs)
        return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


class HalfCheetahMassFamily(HalfCheetahFamily):
    """HalfCheetah with every body's mass (and inertia) scaled."""

    name = "halfcheetah_mass"
    env_id = "mbmeta/HalfCheetahMass-v0"
    description = "HalfCheetah, body mass scale (CaDM splits)"
    parameters = (Parameter("mass_scale", 1.0, "factor on every body's mass and inertia"),)
    train = ({"mass_scale": TRAIN_SCALES},)
    test = ({"mass_scale": TEST_SCALES},)
    extra_splits = {
        "test_moderate": ({"mass_scale": MODERATE_SCALES},),
        "test_extreme": ({"mass_scale": EXTREME_SCALES},),
    }
    notes = (
        _OBS_NOTE + " Mass scale multiplies body_mass and body_inertia (uniform density; CaDM scaled mass only). "
        "Test split = moderate {0.4, 0.5, 1.5, 1.6} ∪ extreme {0.2, 0.3, 1.7, 1.8}, also sampled alone as "
        "'test_moderate' / 'test_extreme'."
    )


class HalfCheetahDampingFamily(HalfCheetahFamily):
    """HalfCheetah with every joint's damping scaled."""

    name = "halfcheetah_damping"
    env_id = "mbmeta/HalfCheetahDamping-v0"
    description = "HalfCheetah, joint damping scale (CaDM splits)"
    parameters = (Parameter("damping_scale", 1.0, "factor on every joint's damping", strict=False),)
    train = ({"damping_scale": TRAIN_SCALES},)
    test = ({"damping_scale": TEST_SCALES},)
    extra_splits = {
        "test_moderate": ({"damping_scale": MODERATE_SCALES},),
        "test_extreme": ({"damping_scale": EXTREME_SCALES},),
    }
    notes = (
        _OBS_NOTE + " Test split = moderate {0.4, 0.5, 1.5, 1.6} ∪ extreme {0.2, 0.3, 1.7, 1.8}, also sampled "
        "alone as 'test_moderate' / 'test_extreme'."
    )


class CrippledHalfCheetahFamily(CrippledFamilyMixin, HalfCheetahFamily):
    """HalfCheetah with one joint's actuator disabled."""

    name = "crippled_halfcheetah"
    env_id = "mbmeta/CrippledHalfCheetah-v0"
    description = "HalfCheetah, one joint's actuator disabled (CaDM splits)"
    limb_count = 6
    parameters = (
        Parameter(
            "crippled_joint",
            -1.0,
            "index of the disabled actuator (0 bthigh, 1 bshin, 2 bfoot, 3 fthigh, 4 fshin, 5 ffoot); -1 intact",
            minimum=-1.0,
            strict=False,
            integer=True,
        ),
    )
    train = ({"crippled_joint": Choice((0, 1, 2, 3))},)
    test = ({"crippled_joint": Choice((4, 5))},)
    notes = (
        _OBS_NOTE + " The crippled actuator's gear is zeroed: its action entry moves nothing but still pays the "
        "control cost. The nominal task (-1) is the intact robot, in neither split; the crippled limb renders red."
    )


@contextmanager
def without_settotalmass_warning() -> Iterator[None]:
    """Silence MuJoCo's deprecation warning for the ``settotalmass`` attribute of Gymnasium's cheetah XML.

    MuJoCo prints it and appends it to ``MUJOCO_LOG.TXT`` in the working directory on every model load; the
    compiled model is unaffected. Any other MuJoCo warning raised meanwhile is re-issued as a Python warning.
    """
    previous = mujoco.get_mju_user_warning()
    messages: list[str] = []
    mujoco.set_mju_user_warning(messages.append)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)
        for message in messages:
            if "settotalmass" not in message:
                warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=3)


HALFCHEETAH_MASS = HalfCheetahMassFamily()
HALFCHEETAH_DAMPING = HalfCheetahDampingFamily()
CRIPPLED_HALFCHEETAH = CrippledHalfCheetahFamily()


class HalfCheetahTaskEnv(LocomotionEnvMixin, HalfCheetahEnv):
    """HalfCheetah-v5 with a task and the step's x-velocity appended to the observation (see module docs)."""

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
            **kwargs: rendering arguments of ``MujocoEnv`` (``render_mode``, ``width``, ``height``, ...); the
                reward-defining Gymnasium arguments are fixed and raise TypeError.
        """
        self._reject_fixed_kwargs(HalfCheetahEnv, kwargs, self.family.env_id)
        super().__init__(frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **kwargs)
        self._init_locomotion(task, frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **kwargs)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        with without_settotalmass_warning():
            return super()._initialize_simulation()


class HalfCheetahMassEnv(HalfCheetahTaskEnv):
    """``mbmeta/HalfCheetahMass-v0``."""

    family = HALFCHEETAH_MASS
    apply_task = staticmethod(physics.apply_mass)
    task_fields = physics.MASS_FIELDS


class HalfCheetahDampingEnv(HalfCheetahTaskEnv):
    """``mbmeta/HalfCheetahDamping-v0``."""

    family = HALFCHEETAH_DAMPING
    apply_task = staticmethod(physics.apply_damping)
    task_fields = physics.DAMPING_FIELDS


class CrippledHalfCheetahEnv(HalfCheetahTaskEnv):
    """``mbmeta/CrippledHalfCheetah-v0``."""

    family = CRIPPLED_HALFCHEETAH
    apply_task = staticmethod(physics.apply_crippled_joint)
    task_fields = physics.CRIPPLE_FIELDS


register_family(HALFCHEETAH_MASS, f"{__name__}:HalfCheetahMassEnv")
register_family(HALFCHEETAH_DAMPING, f"{__name__}:HalfCheetahDampingEnv")
register_family(CRIPPLED_HALFCHEETAH, f"{__name__}:CrippledHalfCheetahEnv")
