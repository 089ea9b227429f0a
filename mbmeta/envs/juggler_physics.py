"""Juggler physics: the task written into the MuJoCo model, and the joint servos of the servo variants.

Pure functions on a ``mujoco.MjModel`` (no env, no family): the calibrated restitution of the ball-paddle contact,
:func:`apply_task` (a task's physics from the nominal fields, idempotent) and :func:`use_servo_actuators`.
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from mbmeta.envs.juggler_geometry import SERVO_SPAN
from mbmeta.types import TaskParams

TASK_SCALES = ("ball_mass_scale", "friction_scale", "restitution_scale", "gear_scale")
"""The juggler's task parameters, each a scale of a nominal physical quantity (1 = the model as written)."""


# ----- restitution ------------------------------------------------------------------------------------------
# The ball-paddle contact is a mass-normalised spring-damper: solref = (-stiffness, -damping), stiffness fixed at
# 40000 s^-2. MuJoCo's unilateral soft contact bounces higher than the ideal spring-damper formula predicts, so
# the coefficient of restitution e of each damping value was measured: the ball dropped from 0.2 to 0.8 m (13
# heights, averaged) onto the level paddle of an arm held still by a 1e3 joint armature; e = rebound speed / impact
# speed. Accurate to about +-0.04 depending on impact speed (the contact spans ~16 timesteps). Checked by
# tests/envs/test_juggler.py.
_CALIB_DAMPING = np.arange(0.0, 401.0, 20.0)
_CALIB_RESTITUTION = np.array(
    [1.015, 0.888, 0.781, 0.693, 0.617, 0.553, 0.498, 0.449, 0.409, 0.372, 0.339]
    + [0.309, 0.282, 0.259, 0.237, 0.217, 0.197, 0.18, 0.161, 0.146, 0.127]
)
RESTITUTION_RANGE = (0.13, 0.95)  # coefficients the calibration covers (and below 1: no energy gain)


def restitution_of_damping(damping: float) -> float:
    """Measured coefficient of restitution of the ball-paddle contact for a damping (s^-1, positive)."""
    return float(np.interp(damping, _CALIB_DAMPING, _CALIB_RESTITUTION))


def damping_of_restitution(restitution: float) -> float:
    """Inverse of :func:`restitution_of_damping` (the calibration is monotone decreasing)."""
    return float(np.interp(restitution, _CALIB_RESTITUTION[::-1], _CALIB_DAMPING[::-1]))


# ----- task application -------------------------------------------------------------------------------------
NOMINAL_FIELDS = (
    "body_mass",
    "body_inertia",
    "pair_friction",
    "pair_solref",
    "actuator_gear",
    "actuator_gainprm",
    "actuator_biasprm",
    "actuator_forcerange",
)


def apply_task(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """Write a task's physics into ``mj_model`` from the nominal fields (pure, idempotent, in place).

    - ``ball_mass_scale``: ball mass and rotational inertia × scale (a denser ball of the same size).
    - ``friction_scale``: tangential friction coefficient of the ball-paddle contact × scale.
    - ``restitution_scale``: coefficient of restitution of the ball-paddle contact × scale, realised through the
      contact damping (the calibrated :func:`damping_of_restitution`).
    - ``gear_scale``: every actuator's gear × scale (motor strength). On servo actuators
      (:func:`use_servo_actuators`) the servo's stiffness, damping and torque limit × scale instead.

    Args:
        mj_model: the model to modify.
        nominal: copies of :data:`NOMINAL_FIELDS` taken from the unmodified model.
        task: a validated task of a juggler family.
    """
    ball = mj_model.body("ball").id
    pair = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_PAIR, "ball_paddle")
    task = {
        name: task.get(name, 1.0) for name in TASK_SCALES
    }  # a family varying fewer parameters keeps the rest nominal
    mj_model.body_mass[ball] = nominal["body_mass"][ball] * task["ball_mass_scale"]
    mj_model.body_inertia[ball] = nominal["body_inertia"][ball] * task["ball_mass_scale"]
    mj_model.pair_friction[pair, :2] = nominal["pair_friction"][pair, :2] * task["friction_scale"]
    nominal_damping = -float(nominal["pair_solref"][pair, 1])
    nominal_e = restitution_of_damping(nominal_damping)
    # Written as a change from the nominal damping so that scale 1 restores the model's value bit for bit
    # (the calibration's round trip damping -> e -> damping is exact only up to rounding).
    change = damping_of_restitution(nominal_e * task["restitution_scale"]) - damping_of_restitution(nominal_e)
    mj_model.pair_solref[pair, 1] = -(nominal_damping + change)
    if is_servo(mj_model):  # a servo s times as strong: stiffness, damping and torque limit × s (its set point kept)
        mj_model.actuator_gainprm[:, 0] = nominal["actuator_gainprm"][:, 0] * task["gear_scale"]
        mj_model.actuator_biasprm[:, :3] = nominal["actuator_biasprm"][:, :3] * task["gear_scale"]
        mj_model.actuator_forcerange[:] = nominal["actuator_forcerange"] * task["gear_scale"]
    else:
        mj_model.actuator_gear[:, 0] = nominal["actuator_gear"][:, 0] * task["gear_scale"]
    # The ball's slide joints make it a "simple" body whose joint-space inertia MuJoCo precomputes (dof_M0) instead
    # of recomputing it each step; without refreshing the model's constants a heavier ball would fall faster.
    # mj_setConst recomputes them (and invweight0, subtree masses) from the current masses: pure and idempotent.
    mujoco.mj_setConst(mj_model, mujoco.MjData(mj_model))


# ----- servo actuation --------------------------------------------------------------------------------------
ACTUATIONS = ("torque", "servo")
SERVO_STIFFNESS = 20.0  # N·m/rad of servo stiffness per N·m of the motor's torque limit


def use_servo_actuators(mj_model: mujoco.MjModel, home: np.ndarray, span: float = SERVO_SPAN) -> None:
    """Turn the torque motors into joint servos (in place): action ``a`` in [-1, 1] sets the joint target.

    Joint ``i``'s torque is ``clip(kp_i·(home_i + span·a_i − q_i) − kv_i·q̇_i, ±F_i)``: ``F_i`` is the
    motor's torque limit (its gear, 30 / 15 / 5 N·m), ``kp_i = SERVO_STIFFNESS·F_i`` and ``kv_i`` damps the joint
    critically given its inertia at ``home`` (the ball's weight makes it sag a little). Written as MuJoCo
    affine-bias actuators so that the same ``ctrl`` drives ``mujoco.rollout``; the damping is integrated
    implicitly (``implicitfast``).

    Args:
        mj_model: the juggler model with its torque motors (gear = torque limit); modified in place.
        home: ``[3]`` joint angles that an action of zero holds (rad).
        span: joint-target offset (rad) of an action of ±1 (:data:`SERVO_SPAN` by default).
    """
    if not span > 0:
        raise ValueError(f"use_servo_actuators: span must be > 0 rad, got {span!r}")
    if is_servo(mj_model):
        raise ValueError("use_servo_actuators: the model's actuators are servos already")
    data = mujoco.MjData(mj_model)
    data.qpos[: len(home)] = home
    mujoco.mj_forward(mj_model, data)
    mass = np.zeros((mj_model.nv, mj_model.nv))
    mujoco.mj_fullM(mj_model, data, mass)
    joints = mj_model.actuator_trnid[:, 0]
    inertia = np.diag(mass)[mj_model.jnt_dofadr[joints]]
    limit = mj_model.actuator_gear[:, 0].copy()
    kp = SERVO_STIFFNESS * limit
    kv = 2.0 * np.sqrt(kp * inertia)
    mj_model.actuator_gear[:, 0] = 1.0
    mj_model.actuator_gaintype[:] = mujoco.mjtGain.mjGAIN_FIXED
    mj_model.actuator_gainprm[:, 0] = kp * span
    mj_model.actuator_biastype[:] = mujoco.mjtBias.mjBIAS_AFFINE
    mj_model.actuator_biasprm[:, :3] = np.stack([kp * np.asarray(home)[joints], -kp, -kv], axis=1)
    mj_model.actuator_forcelimited[:] = 1
    mj_model.actuator_forcerange[:] = np.stack([-limit, limit], axis=1)
    mujoco.mj_setConst(mj_model, data)  # actuator constants (acc0) of the new gear, as apply_task recomputes them


def is_servo(mj_model: mujoco.MjModel) -> bool:
    """Whether the model's actuators are the servos of :func:`use_servo_actuators`."""
    return bool((mj_model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE).all())
