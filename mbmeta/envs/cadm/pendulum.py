"""CaDM's Pendulum (``RandomPendulumAll`` in ``cadm/envs/classic_control.py``, on gym 0.16's ``PendulumEnv``).

A uniform rod of mass ``m`` and length ``l`` on a hinge (``θ = 0`` upright), ``g = 10``, ``dt = 0.05``; 200-step
episodes; it never terminates. One env step, with the agent's action ``a`` in ``[-1, 1]`` (CaDM's ``NormalizedEnv``
maps it to the torque ``u = clip(-2 + 2(a + 1), -2, 2)``, i.e. ``2a``)::

    cost     = norm(θ)² + 0.1 θdot² + 0.001 (u / 2)²          norm(θ) = ((θ + π) mod 2π) - π, state before the step
    θdot'    = θdot + (-3g / (2l) · sin(θ + π) + 3 / (m l²) · u) · dt
    θ'       = θ + θdot' · dt                                  with the unclipped θdot'
    θdot'    = clip(θdot', -8, 8)
    reward   = -cost

(CaDM's ``(u / 2)²`` is ``a²``: gym's torque cost on the normalised action.) Observation ``[cos θ, sin θ, θdot]``.
Start: ``θ ~ U[7π/8, 9π/8]`` (hanging, ±π/8), ``θdot ~ U[-0.2, 0.2]``. Task: ``mass`` and ``length`` (absolute,
nominal 1), each drawn from the split's set; test conditions pair light-and-long with heavy-and-short.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
import torch
from gymnasium.spaces import Box
from torch import Tensor

from mbmeta.envs.cadm.base import (
    SOURCE,
    ReferenceFamily,
    choice_region,
    scale_action,
    scale_action_torch,
    union_of_regions,
)
from mbmeta.envs.cadm.classic import ClassicReferenceEnv
from mbmeta.envs.family import Condition, Parameter
from mbmeta.envs.registry import register_family
from mbmeta.types import TaskParams

GRAVITY = 10.0
DT = 0.05
MAX_SPEED = 8.0
MAX_TORQUE = 2.0
OBS_DIM = 3
_TORQUE_LOW, _TORQUE_HIGH = np.array([-MAX_TORQUE]), np.array([MAX_TORQUE])  # gym's action box, before normalising

_TRAIN_VALUES = tuple(round(0.75 + 0.05 * i, 2) for i in range(11))


def normalise_angle(theta: Any) -> Any:
    """``((θ + π) mod 2π) - π``, in ``[-π, π)``: for floats and arrays (tensors: use ``torch.remainder``)."""
    return ((theta + math.pi) % (2.0 * math.pi)) - math.pi


def pendulum_step(theta: float, theta_dot: float, action: float, mass: float, length: float) -> tuple[float, ...]:
    """One CaDM pendulum step (see the module docstring) for scalars.

    Args:
        theta: angle before the step (any real, 0 upright).
        theta_dot: angular velocity before the step.
        action: the agent's action in ``[-1, 1]``, mapped to the torque ``u`` as CaDM's ``NormalizedEnv`` does.
        mass: the rod's mass.
        length: the rod's length.

    Returns:
        ``(θ', θdot', reward)``.
    """
    torque = float(scale_action(np.array([action]), _TORQUE_LOW, _TORQUE_HIGH)[0])
    cost = normalise_angle(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * (torque / 2.0) ** 2
    accel = -3.0 * GRAVITY / (2.0 * length) * math.sin(theta + math.pi) + 3.0 / (mass * length**2) * torque
    new_theta_dot = theta_dot + accel * DT
    new_theta = theta + new_theta_dot * DT
    new_theta_dot = min(max(new_theta_dot, -MAX_SPEED), MAX_SPEED)
    return new_theta, new_theta_dot, -cost


class CaDMPendulumFamily(ReferenceFamily):
    """CaDM's Pendulum: rod mass and length."""

    name = "cadm_pendulum"
    env_id = "mbmeta/CaDMPendulum-v0"
    description = "CaDM reference Pendulum (gym uniform rod, starts hanging): mass and length"
    reference = f"{SOURCE}: cadm/envs/classic_control.py (RandomPendulumAll), cadm/envs/config.py ('pendulum')"
    observation_size = OBS_DIM
    action_size = 1
    parameters = (
        Parameter("mass", 1.0, "the rod's mass (kg)"),
        Parameter("length", 1.0, "the rod's length (m)"),
    )
    train = (choice_region(mass=_TRAIN_VALUES, length=_TRAIN_VALUES),)
    conditions = (
        Condition("c0", "extreme", (choice_region(mass=(0.2, 0.4), length=(1.6, 1.8)),)),
        Condition("c1", "moderate", (choice_region(mass=(0.5, 0.7), length=(1.3, 1.5)),)),
        Condition("c2", "moderate", (choice_region(mass=(1.3, 1.5), length=(0.5, 0.7)),)),
        Condition("c3", "extreme", (choice_region(mass=(1.6, 1.8), length=(0.2, 0.4)),)),
    )
    test = union_of_regions(conditions)
    protocol_episodes = 10
    episode_steps = 200
    notes = (
        "Reproduces CaDM's step formula for formula (numpy, float64). Differences: none in the dynamics, reward or "
        "start; the MuJoCo model only draws the state."
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``-(norm(θ)² + 0.1 θdot² + 0.001 (u/2)²)`` of ``obs``, torque u: ``[*S, 3], [*S, 1], [*S, 3] -> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        theta = torch.atan2(obs[..., 1], obs[..., 0])  # in (-π, π]: the same square as CaDM's norm(θ)
        torque = scale_action_torch(action.to(obs.dtype), _TORQUE_LOW, _TORQUE_HIGH)[..., 0]
        return -(theta.square() + 0.1 * obs[..., 2].square() + 0.001 * (torque / 2.0).square())

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Never: ``[*S, 3], [*S, 1], [*S, 3] -> [*S]`` all False."""
        self.check_shapes(obs, action, next_obs)
        return self.never(next_obs)


CADM_PENDULUM = register_family(CaDMPendulumFamily(), f"{__name__}:CaDMPendulumEnv")


def apply_pendulum_picture(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """Draw the task: the rod's mass, and its length (geometry, centre of mass, inertia); from ``nominal``."""
    mass, length = task["mass"], task["length"]
    rod_body, rod_geom = mj_model.body("rod").id, mj_model.geom("rod").id
    mj_model.body_mass[rod_body] = nominal["body_mass"][rod_body] * mass
    mj_model.body_ipos[rod_body] = nominal["body_ipos"][rod_body] * length
    mj_model.body_inertia[rod_body] = nominal["body_inertia"][rod_body] * (mass * length * length)
    mj_model.geom_pos[rod_geom] = nominal["geom_pos"][rod_geom] * length
    mj_model.geom_size[rod_geom, 1] = nominal["geom_size"][rod_geom, 1] * length  # capsule half-length


class CaDMPendulumEnv(ClassicReferenceEnv):
    """``mbmeta/CaDMPendulum-v0`` (see the module docstring).

    Args:
        task: initial task (``mass`` and ``length``; the nominal one if None).
        **kwargs: rendering arguments of :class:`ClassicReferenceEnv`.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}
    family = CADM_PENDULUM
    apply_task = staticmethod(apply_pendulum_picture)
    task_fields = ("body_mass", "body_ipos", "body_inertia", "geom_pos", "geom_size")

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        self._theta, self._theta_dot = 0.0, 0.0
        high = np.array([1.0, 1.0, MAX_SPEED])
        super().__init__("cadm_pendulum.xml", Box(low=-high, high=high, dtype=np.float64), task, **kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.array([math.cos(self._theta), math.sin(self._theta), self._theta_dot])

    def _picture_state(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([self._theta]), np.array([self._theta_dot])

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set ``θ = qpos[0]`` (0 upright, not wrapped) and ``θdot = qvel[0]``."""
        self._theta, self._theta_dot = float(np.asarray(qpos)[0]), float(np.asarray(qvel)[0])

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the torque ``2a`` for ``dt = 0.05`` s.

        Args:
            action: ``[1]`` in ``[-1, 1]``.

        Returns:
            ``(obs [3], reward, terminated=False, truncated=False, info)``.
        """
        a = float(self._checked_action(action)[0])
        task = self.task
        self._theta, self._theta_dot, reward = pendulum_step(
            self._theta, self._theta_dot, a, task["mass"], task["length"]
        )
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, False, False, self._with_task({})

    def reset_model(self) -> np.ndarray:
        """``θ ~ U[7π/8, 9π/8]`` wrapped to ``[-π, π)``, ``θdot ~ U[-0.2, 0.2]``, from the env's seeded generator."""
        theta, theta_dot = self.np_random.uniform(low=[7 / 8 * math.pi, -0.2], high=[9 / 8 * math.pi, 0.2])
        self.set_state(np.array([normalise_angle(theta)]), np.array([theta_dot]))
        return self._get_obs()
