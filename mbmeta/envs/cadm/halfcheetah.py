"""CaDM's HalfCheetah (mass and damping) and crippled HalfCheetah, as in ``cadm/envs/half_cheetah*_env.py``.

Both use the HalfCheetah MJCF that Gymnasium ships (CaDM's copy differs only in the floor plane's drawn size and a
missing tracking camera: MuJoCo planes collide as infinite planes, so the physics is the same) with 5 MuJoCo steps
of 0.01 s per env step (``dt = 0.05``); 1000-step episodes; they never terminate.

- Observation ``[18]``: the root's x-displacement over the step divided by ``dt`` (0 right after a reset), then
  ``qpos[1:]`` (8) and ``qvel`` (9).
- Reward: ``obs'[0] - 0.1 ‖a‖²`` with ``a`` the applied control (the action clipped to ``[-1, 1]``; the actuators'
  range is ``[-1, 1]``, so CaDM's action normalisation is the identity).
- Start: ``qpos = init + N(0, 0.001²)``, ``qvel = init + N(0, 0.001²)`` (Gymnasium v5 uses ±0.1).
- ``cadm_halfcheetah``: every body's mass × ``mass_scale`` (``body_mass`` only, inertia untouched, as CaDM) and every
  joint's damping × ``damping_scale``; each drawn independently from the split's set.
- ``cadm_crippled_halfcheetah``: one flag per actuated joint; a crippled joint's actuator exerts no force (CaDM masks
  its action to 0, here its gear is 0: the same dynamics) and its body renders red. Train: one of joints 0-3
  crippled; test ``c0`` (moderate): one of joints 4-5; ``c1`` (extreme): both 4 and 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import DEFAULT_CAMERA_CONFIG
from torch import Tensor

from mbmeta.envs.cadm.base import (
    SOURCE,
    ReferenceFamily,
    ReferenceMujocoEnv,
    choice_region,
    scale_action_torch,
    union_of_regions,
)
from mbmeta.envs.family import Choice, Condition, Parameter
from mbmeta.envs.locomotion import physics
from mbmeta.envs.locomotion.halfcheetah import without_settotalmass_warning
from mbmeta.envs.registry import register_family
from mbmeta.types import TaskParams

ASSET = "half_cheetah.xml"  # Gymnasium's copy (see the module docstring)
FRAME_SKIP = 5
OBS_DIM = 18
ACTION_DIM = 6
CTRL_COST_WEIGHT = 0.1
RESET_NOISE_STD = 0.001
_CTRL_LOW, _CTRL_HIGH = -np.ones(ACTION_DIM), np.ones(ACTION_DIM)  # the actuators' ctrlrange in the MJCF
JOINTS = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")  # actuator i drives joint JOINTS[i]

_TRAIN_SCALES = (0.75, 0.85, 1.0, 1.15, 1.25)
# cadm/envs/config.py, 'halfcheetah': test_range[i] = [mass set, damping set]
_SCALE_CONDITIONS = (
    Condition("c0", "extreme", (choice_region(mass_scale=(0.2, 0.3), damping_scale=(0.2, 0.3)),)),
    Condition("c1", "moderate", (choice_region(mass_scale=(0.4, 0.5), damping_scale=(0.4, 0.5)),)),
    Condition("c2", "moderate", (choice_region(mass_scale=(1.5, 1.6), damping_scale=(1.5, 1.6)),)),
    Condition("c3", "extreme", (choice_region(mass_scale=(1.7, 1.8), damping_scale=(1.7, 1.8)),)),
)


def crippled_region(*joints: int) -> dict[str, Choice]:
    """The region (a single task) in which exactly ``joints`` are crippled."""
    return {f"crippled_{name}": Choice((1.0 if i in joints else 0.0,)) for i, name in enumerate(JOINTS)}


class CheetahFamily(ReferenceFamily):
    """The CaDM cheetah's reward ``obs'[0] - 0.1 ‖clip(a)‖²`` and (absent) termination, shared by both families."""

    observation_size = OBS_DIM
    action_size = ACTION_DIM
    episode_steps = 1000

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``[*S, 18], [*S, 6], [*S, 18] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        ctrl = scale_action_torch(action.to(next_obs.dtype), _CTRL_LOW, _CTRL_HIGH)
        return next_obs[..., 0] - CTRL_COST_WEIGHT * ctrl.square().sum(-1)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Never: ``[*S, 18], [*S, 6], [*S, 18] -> [*S]`` all False."""
        self.check_shapes(obs, action, next_obs)
        return self.never(next_obs)


class CaDMHalfCheetahFamily(CheetahFamily):
    """CaDM's HalfCheetah: mass and damping scales drawn independently from CaDM's sets."""

    name = "cadm_halfcheetah"
    env_id = "mbmeta/CaDMHalfCheetah-v0"
    description = "CaDM reference HalfCheetah: body mass and joint damping scales"
    reference = f"{SOURCE}: cadm/envs/half_cheetah_env.py, cadm/envs/config.py ('halfcheetah')"
    parameters = (
        Parameter("mass_scale", 1.0, "factor on every body's mass (body_mass only, as CaDM)"),
        Parameter("damping_scale", 1.0, "factor on every joint's damping", strict=False),
    )
    train = (choice_region(mass_scale=_TRAIN_SCALES, damping_scale=_TRAIN_SCALES),)
    conditions = _SCALE_CONDITIONS
    test = union_of_regions(_SCALE_CONDITIONS)
    protocol_episodes = 10
    notes = (
        "Reproduces CaDM. Differences: MuJoCo 3 (CaDM: MuJoCo 2.0 via mujoco-py); the planner's reward is the env's "
        "(CaDM's planning reward used the previous step's velocity, obs[0] instead of next_obs[0])."
    )


class CaDMCrippledHalfCheetahFamily(CheetahFamily):
    """CaDM's crippled HalfCheetah: one or two joints' actuators disabled."""

    name = "cadm_crippled_halfcheetah"
    env_id = "mbmeta/CaDMCrippledHalfCheetah-v0"
    description = "CaDM reference crippled HalfCheetah: disabled joint actuators (1 = crippled)"
    reference = f"{SOURCE}: cadm/envs/half_cheetah_cripple_env.py, cadm/envs/config.py ('cripple_halfcheetah')"
    parameters = tuple(
        Parameter(f"crippled_{joint}", 0.0, f"1: the {joint} actuator exerts no force", strict=False, integer=True)
        for joint in JOINTS
    )
    train = tuple(crippled_region(j) for j in range(4))
    conditions = (
        Condition("c0", "moderate", (crippled_region(4), crippled_region(5))),
        Condition("c1", "extreme", (crippled_region(4, 5),)),
    )
    test = union_of_regions(conditions)
    protocol_episodes = 20
    notes = (
        "Reproduces CaDM, except that a crippled joint's action still pays the control cost (CaDM charges the masked "
        "action, 0): the reward stays a function of (obs, action, next_obs). Returns are lower by 0.1·a_c² per step "
        "for a crippled joint's action a_c (near 0 for a planner, which sees that cost and no benefit; CaDM's planner "
        "charged the unmasked action too). MuJoCo 3 (CaDM: 2.0). The nominal task is the intact robot."
    )

    def validate(self, task: TaskParams | Mapping[str, float]) -> TaskParams:
        """Check the task as :meth:`TaskFamily.validate` does, and that every flag is 0 or 1."""
        task = super().validate(task)
        for name, value in task.values:
            if value not in (0.0, 1.0):
                raise ValueError(f"family {self.name!r}: parameter {name!r} must be 0 (intact) or 1, got {value:g}")
        return task


CADM_HALFCHEETAH = register_family(CaDMHalfCheetahFamily(), f"{__name__}:CaDMHalfCheetahEnv")
CADM_CRIPPLED_HALFCHEETAH = register_family(CaDMCrippledHalfCheetahFamily(), f"{__name__}:CaDMCrippledHalfCheetahEnv")


def apply_mass_and_damping(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """``body_mass = nominal × mass_scale`` and ``dof_damping = nominal × damping_scale`` (inertia untouched)."""
    mj_model.body_mass[:] = nominal["body_mass"] * task["mass_scale"]
    mj_model.dof_damping[:] = nominal["dof_damping"] * task["damping_scale"]


def apply_crippled_joints(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """Zero the gear of every crippled joint's actuator and colour its body red (from ``nominal``: idempotent)."""
    crippled = [i for i, joint in enumerate(JOINTS) if task[f"crippled_{joint}"] == 1.0]
    bodies = [int(mj_model.jnt_bodyid[mj_model.actuator_trnid[i, 0]]) for i in crippled]
    physics.disable_actuators(mj_model, nominal, crippled, bodies)


class CaDMCheetahEnv(ReferenceMujocoEnv):
    """The CaDM HalfCheetah env (see the module docstring); subclasses pick the task.

    Args:
        task: initial task (the family's nominal one if None).
        **kwargs: rendering arguments of ``MujocoEnv`` (``render_mode``, ``width``, ``height``, ...).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("default_camera_config", DEFAULT_CAMERA_CONFIG)
        self._x_before = 0.0
        super().__init__(ASSET, FRAME_SKIP, OBS_DIM, task, **kwargs)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        with without_settotalmass_warning():
            return super()._initialize_simulation()

    def _get_obs(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        out = np.empty(OBS_DIM)
        out[0] = (qpos[0] - self._x_before) / self.dt
        out[1:9] = qpos[1:]
        out[9:] = qvel
        return out

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``[6]`` controls in ``[-1, 1]`` for ``dt = 0.05`` s.

        Returns:
            ``(obs [18], obs[0] - 0.1 ‖a‖², terminated=False, truncated=False, info)``.
        """
        ctrl = self._control(action)
        self._x_before = float(self.data.qpos[0])
        self._step_mujoco_simulation(ctrl, self.frame_skip)
        obs = self._get_obs()
        reward = float(obs[0] - CTRL_COST_WEIGHT * np.square(ctrl).sum())
        if self.render_mode == "human":
            self.render()
        return obs, reward, False, False, self._with_task({})

    def reset_model(self) -> np.ndarray:
        """``qpos, qvel = init + N(0, 0.001²)`` from the env's seeded generator; the first velocity reads 0."""
        qpos = self.init_qpos + self.np_random.normal(0.0, RESET_NOISE_STD, size=self.model.nq)
        qvel = self.init_qvel + self.np_random.normal(0.0, RESET_NOISE_STD, size=self.model.nv)
        self.set_state(qpos, qvel)
        self._x_before = float(self.data.qpos[0])
        return self._get_obs()


class CaDMHalfCheetahEnv(CaDMCheetahEnv):
    """``mbmeta/CaDMHalfCheetah-v0``."""

    family = CADM_HALFCHEETAH
    apply_task = staticmethod(apply_mass_and_damping)
    task_fields = ("body_mass", "dof_damping")


class CaDMCrippledHalfCheetahEnv(CaDMCheetahEnv):
    """``mbmeta/CaDMCrippledHalfCheetah-v0``."""

    family = CADM_CRIPPLED_HALFCHEETAH
    apply_task = staticmethod(apply_crippled_joints)
    task_fields = physics.CRIPPLE_FIELDS
