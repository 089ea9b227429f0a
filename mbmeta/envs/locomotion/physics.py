"""Pure task-application functions for the locomotion families: ``apply(mj_model, nominal, task)``.

Each function overwrites the ``MjModel`` fields a family varies with ``nominal × scale`` (or ``nominal`` with some
entries zeroed): calling it twice with the same task leaves the same arrays, and switching tasks never compounds,
because the result depends only on the nominal copy and the task. The model is never rebuilt.

A *mass* scale multiplies ``body_mass`` and ``body_inertia`` together: a uniform change of density, so a body's
inertia stays consistent with its mass (CaDM scaled ``body_mass`` alone). Quantities MuJoCo derives at compile time
from the masses (``body_subtreemass``, ``*_invweight0``, ``stat.meaninertia``) are left nominal, as CaDM and MuJoCo
Playground's randomisers do; the dynamics (mass matrix, gravity, contacts) use the scaled values at every step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mujoco
import numpy as np

from mbmeta.envs.family import TaskParams

MASS_FIELDS: tuple[str, ...] = ("body_mass", "body_inertia")
DAMPING_FIELDS: tuple[str, ...] = ("dof_damping",)
CRIPPLE_FIELDS: tuple[str, ...] = ("actuator_gear", "geom_rgba")

# Colour of a crippled limb in renders (so videos show which one it is).
CRIPPLED_RGBA = np.array([0.9, 0.1, 0.1, 1.0])

Nominal = Mapping[str, np.ndarray]


def scale_mass(mj_model: mujoco.MjModel, nominal: Nominal, scale: float) -> None:
    """Set every body's mass and inertia to ``nominal × scale``."""
    mj_model.body_mass[:] = nominal["body_mass"] * scale
    mj_model.body_inertia[:] = nominal["body_inertia"] * scale


def scale_body_masses(mj_model: mujoco.MjModel, nominal: Nominal, scales: np.ndarray) -> None:
    """Set body ``b``'s mass and inertia to ``nominal[b] × scales[b]``.

    Args:
        mj_model: the model to write.
        nominal: the nominal ``body_mass`` ``[nbody]`` and ``body_inertia`` ``[nbody, 3]``.
        scales: ``[nbody]`` one factor per body.
    """
    mj_model.body_mass[:] = nominal["body_mass"] * scales
    mj_model.body_inertia[:] = nominal["body_inertia"] * scales[:, None]


def scale_damping(mj_model: mujoco.MjModel, nominal: Nominal, scale: float) -> None:
    """Set every degree of freedom's damping to ``nominal × scale``."""
    mj_model.dof_damping[:] = nominal["dof_damping"] * scale


def disable_actuators(
    mj_model: mujoco.MjModel, nominal: Nominal, actuators: Sequence[int], bodies: Sequence[int]
) -> None:
    """Zero the gear of some actuators (their controls then exert no force) and colour their limb.

    The action space is unchanged (it comes from ``actuator_ctrlrange``); the policy may still send controls
    to a disabled actuator, and still pays their control cost, but they move nothing.

    Args:
        mj_model: the model to write.
        nominal: the nominal ``actuator_gear`` ``[nu, 6]`` and ``geom_rgba`` ``[ngeom, 4]``.
        actuators: indices of the actuators to disable (empty: the intact robot).
        bodies: bodies whose geoms are drawn in :data:`CRIPPLED_RGBA`.
    """
    gear = nominal["actuator_gear"].copy()
    gear[list(actuators)] = 0.0
    mj_model.actuator_gear[:] = gear
    rgba = nominal["geom_rgba"].copy()
    rgba[np.isin(mj_model.geom_bodyid, list(bodies))] = CRIPPLED_RGBA
    mj_model.geom_rgba[:] = rgba


def subtree(mj_model: mujoco.MjModel, root: int) -> list[int]:
    """Ids of ``root`` and all its descendant bodies (bodies are numbered parents first)."""
    members = {root}
    for body in range(root + 1, mj_model.nbody):
        if int(mj_model.body_parentid[body]) in members:
            members.add(body)
    return sorted(members)


def limbs(mj_model: mujoco.MjModel, parent: str) -> list[list[int]]:
    """The body ids of each limb attached to the body called ``parent``, limbs in model order.

    A limb is the subtree of one child of ``parent`` (for the Ant: the four legs hanging off the torso).
    """
    root = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, parent)
    if root < 0:
        raise ValueError(f"model has no body named {parent!r}")
    children = [b for b in range(mj_model.nbody) if int(mj_model.body_parentid[b]) == root and b != root]
    return [subtree(mj_model, child) for child in children]


def actuators_of_bodies(mj_model: mujoco.MjModel, bodies: Sequence[int]) -> list[int]:
    """Indices of the joint actuators whose joint moves one of ``bodies``."""
    joint_trn = mj_model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT
    joints = mj_model.actuator_trnid[:, 0]
    return [a for a in range(mj_model.nu) if joint_trn[a] and int(mj_model.jnt_bodyid[joints[a]]) in set(bodies)]


# ----- task appliers (the ``apply_task`` of each env class) ------------------------------------------------------
def apply_mass(mj_model: mujoco.MjModel, nominal: Nominal, task: TaskParams) -> None:
    """``mass_scale``: all bodies' mass and inertia × scale."""
    scale_mass(mj_model, nominal, task["mass_scale"])


def apply_damping(mj_model: mujoco.MjModel, nominal: Nominal, task: TaskParams) -> None:
    """``damping_scale``: all joints' damping × scale."""
    scale_damping(mj_model, nominal, task["damping_scale"])


def apply_mass_and_damping(mj_model: mujoco.MjModel, nominal: Nominal, task: TaskParams) -> None:
    """``mass_scale`` and ``damping_scale`` together."""
    scale_mass(mj_model, nominal, task["mass_scale"])
    scale_damping(mj_model, nominal, task["damping_scale"])


def apply_crippled_joint(mj_model: mujoco.MjModel, nominal: Nominal, task: TaskParams) -> None:
    """``crippled_joint`` ``i``: actuator ``i`` (which drives joint ``i``) exerts no force; -1: intact."""
    index = int(task["crippled_joint"])
    if index < 0:
        disable_actuators(mj_model, nominal, [], [])
        return
    joint = int(mj_model.actuator_trnid[index, 0])
    disable_actuators(mj_model, nominal, [index], [int(mj_model.jnt_bodyid[joint])])


def apply_crippled_leg(mj_model: mujoco.MjModel, nominal: Nominal, task: TaskParams) -> None:
    """``crippled_leg`` ``k``: every actuator of the torso's ``k``-th leg exerts no force; -1: intact."""
    index = int(task["crippled_leg"])
    if index < 0:
        disable_actuators(mj_model, nominal, [], [])
        return
    leg = limbs(mj_model, "torso")[index]
    disable_actuators(mj_model, nominal, actuators_of_bodies(mj_model, leg), leg)


def apply_leg_mass(mj_model: mujoco.MjModel, nominal: Nominal, task: TaskParams) -> None:
    """``leg_mass_scale`` ``s``: the torso's legs 1–2 weigh × s, legs 3–4 × 1/s (mass and inertia); torso nominal."""
    s = task["leg_mass_scale"]
    scales = np.ones(mj_model.nbody)
    for k, leg in enumerate(limbs(mj_model, "torso")):
        scales[leg] = s if k < 2 else 1.0 / s
    scale_body_masses(mj_model, nominal, scales)
