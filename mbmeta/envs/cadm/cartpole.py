"""CaDM's CartPole (``RandomCartPole_Force_Length`` in ``cadm/envs/classic_control.py``, on gym 0.16's CartPole).

The classic balancing task: a 1 kg cart and a 0.1 kg uniform pole of half-length ``l`` (gym's ``length``), pushed
left or right with ``force`` newtons, ``g = 9.8``, explicit Euler with ``τ = 0.02`` s; 200-step episodes. One step::

    F     = +force if pushing right else -force
    temp  = (F + m_p l θdot² sin θ) / (m_c + m_p)
    θacc  = (g sin θ - cos θ · temp) / (l (4/3 - m_p cos²θ / (m_c + m_p)))
    xacc  = temp - m_p l θacc cos θ / (m_c + m_p)
    x' = x + τ xdot,  xdot' = xdot + τ xacc,  θ' = θ + τ θdot,  θdot' = θdot + τ θacc

Observation ``[x, xdot, θ, θdot]`` (θ = 0 upright). Terminates when ``|x'| > 2.4`` or ``|θ'| > 12°``. Reward 1 for
every step, the terminating one included (gym's; 0 for steps taken after termination). Start: every state variable
``~ U[-0.05, 0.05]``. Task: ``force`` (N) and ``length`` (m, half the pole), each drawn from the split's set.

Action: gym's CartPole has two discrete actions (push left, push right); mbmeta's planners optimise continuous
actions, so the action here is ``[a]`` in ``[-1, 1]`` and ``a > 0`` pushes right, ``a <= 0`` left: the same two
forces, so the same dynamics and returns for the same sequence of pushes (random actions push each way with
probability 1/2, as gym's ``Discrete(2).sample()``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium.spaces import Box
from torch import Tensor

from mbmeta.envs.cadm.base import SOURCE, ReferenceFamily, choice_region, union_of_regions
from mbmeta.envs.cadm.classic import ClassicReferenceEnv
from mbmeta.envs.family import Condition, Parameter
from mbmeta.envs.registry import register_family
from mbmeta.types import TaskParams

GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
TAU = 0.02  # s per step
X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * math.pi / 360  # rad
RESET_RANGE = 0.05
OBS_DIM = 4


def cartpole_step(state: tuple[float, float, float, float], push_right: bool, force: float, length: float) -> tuple:
    """One gym CartPole step (module docstring) for scalars: ``(x, xdot, θ, θdot) -> (x', xdot', θ', θdot')``.

    Args:
        state: ``(x, xdot, θ, θdot)`` before the step.
        push_right: the push direction (gym's action 1).
        force: the push's magnitude (gym's ``force_mag``).
        length: half the pole's length (gym's ``length``).
    """
    x, x_dot, theta, theta_dot = state
    total_mass = POLE_MASS + CART_MASS
    pole_mass_length = POLE_MASS * length
    push = force if push_right else -force
    cos_theta, sin_theta = math.cos(theta), math.sin(theta)
    temp = (push + pole_mass_length * theta_dot * theta_dot * sin_theta) / total_mass
    theta_acc = (GRAVITY * sin_theta - cos_theta * temp) / (
        length * (4.0 / 3.0 - POLE_MASS * cos_theta * cos_theta / total_mass)
    )
    x_acc = temp - pole_mass_length * theta_acc * cos_theta / total_mass
    return (x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot, theta_dot + TAU * theta_acc)


def out_of_bounds(x: Any, theta: Any) -> Any:
    """The failure test of gym's CartPole, ``x < -2.4 or x > 2.4 or θ < -12° or θ > 12°`` (floats or tensors)."""
    return (abs(x) > X_THRESHOLD) | (abs(theta) > THETA_THRESHOLD)


class CaDMCartPoleFamily(ReferenceFamily):
    """CaDM's CartPole: push force and pole length."""

    name = "cadm_cartpole"
    env_id = "mbmeta/CaDMCartPole-v0"
    description = "CaDM reference CartPole (gym balancing task): push force (N) and pole half-length (m)"
    reference = f"{SOURCE}: cadm/envs/classic_control.py (RandomCartPole_Force_Length), cadm/envs/config.py"
    observation_size = OBS_DIM
    action_size = 1
    parameters = (
        Parameter("force", 10.0, "push force in newtons (gym's force_mag)"),
        Parameter("length", 0.5, "half the pole's length in metres (gym's length); pole mass fixed at 0.1 kg"),
    )
    train = (choice_region(force=tuple(float(f) for f in range(5, 16)), length=(0.4, 0.45, 0.5, 0.55, 0.6)),)
    conditions = (
        Condition("c0", "extreme", (choice_region(force=(2.0, 2.5), length=(0.15, 0.2)),)),
        Condition("c1", "moderate", (choice_region(force=(3.0, 3.5), length=(0.25, 0.3)),)),
        Condition("c2", "moderate", (choice_region(force=(16.5, 17.0), length=(0.7, 0.75)),)),
        Condition("c3", "extreme", (choice_region(force=(17.5, 18.0), length=(0.8, 0.85)),)),
    )
    test = union_of_regions(conditions)
    protocol_episodes = 10
    episode_steps = 200
    notes = (
        "Reproduces CaDM's step formula for formula (numpy, float64). Difference: gym's two discrete actions become "
        "a ∈ [-1, 1], a > 0 pushing right (same forces, dynamics and returns; CaDM could only plan it with random "
        "shooting over discrete sequences, its CEM needs a box). Reward 1 per step incl. the terminating one."
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """1, or 0 for a step taken after termination (``obs`` and ``obs'`` both out of bounds): ``-> [*S]``."""
        self.check_shapes(obs, action, next_obs)
        after_end = out_of_bounds(obs[..., 0], obs[..., 2]) & out_of_bounds(next_obs[..., 0], next_obs[..., 2])
        return (~after_end).to(next_obs.dtype)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``|x'| > 2.4`` or ``|θ'| > 12°``: ``[*S, 4], [*S, 1], [*S, 4] -> [*S]`` bool."""
        self.check_shapes(obs, action, next_obs)
        return out_of_bounds(next_obs[..., 0], next_obs[..., 2])


CADM_CARTPOLE = register_family(CaDMCartPoleFamily(), f"{__name__}:CaDMCartPoleEnv")


def apply_cartpole_picture(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """Draw the task: motor gear = ``force``; the pole's geometry, centre of mass and inertia follow ``length``."""
    scale = task["length"] / CADM_CARTPOLE.nominal()["length"]
    mj_model.actuator_gear[0, 0] = task["force"]
    pole_body, pole_geom = mj_model.body("pole").id, mj_model.geom("pole").id
    mj_model.body_ipos[pole_body] = nominal["body_ipos"][pole_body] * scale
    inertia = nominal["body_inertia"][pole_body].copy()
    inertia[:2] *= scale * scale
    mj_model.body_inertia[pole_body] = inertia
    mj_model.geom_pos[pole_geom] = nominal["geom_pos"][pole_geom] * scale
    mj_model.geom_size[pole_geom, 1] = nominal["geom_size"][pole_geom, 1] * scale  # capsule half-length


class CaDMCartPoleEnv(ClassicReferenceEnv):
    """``mbmeta/CaDMCartPole-v0`` (see the module docstring).

    Args:
        task: initial task (``force`` and ``length``; the nominal one if None).
        **kwargs: rendering arguments of :class:`ClassicReferenceEnv`.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 50}
    family = CADM_CARTPOLE
    apply_task = staticmethod(apply_cartpole_picture)
    task_fields = ("actuator_gear", "body_ipos", "body_inertia", "geom_pos", "geom_size")

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        self._state = (0.0, 0.0, 0.0, 0.0)
        self._ended = False
        kwargs.setdefault(
            "default_camera_config",
            {"distance": 5.5, "azimuth": 90.0, "elevation": -10.0, "lookat": np.array([0.0, 0.0, 1.0])},
        )
        observation_space = Box(low=-np.inf, high=np.inf, shape=(OBS_DIM,), dtype=np.float64)
        super().__init__("cadm_cartpole.xml", observation_space, task, **kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.array(self._state)

    def _picture_state(self) -> tuple[np.ndarray, np.ndarray]:
        x, x_dot, theta, theta_dot = self._state
        return np.array([x, theta]), np.array([x_dot, theta_dot])

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set ``(x, θ) = qpos`` and ``(xdot, θdot) = qvel``; a new episode as far as the reward goes."""
        (x, theta), (x_dot, theta_dot) = np.asarray(qpos, dtype=float), np.asarray(qvel, dtype=float)
        self._state = (float(x), float(x_dot), float(theta), float(theta_dot))
        self._ended = False

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Push the cart right (``a > 0``) or left for ``τ = 0.02`` s.

        Args:
            action: ``[1]`` in ``[-1, 1]``.

        Returns:
            ``(obs [4], reward, terminated, truncated=False, info)``.
        """
        push_right = bool(self._checked_action(action)[0] > 0.0)
        task = self.task
        self._state = cartpole_step(self._state, push_right, task["force"], task["length"])
        terminated = bool(out_of_bounds(self._state[0], self._state[2]))
        # gym: 1 for every step up to and including the one that fails, 0 for steps after it
        reward = 0.0 if (terminated and self._ended) else 1.0
        self._ended = self._ended or terminated
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, False, self._with_task({})

    def reset_model(self) -> np.ndarray:
        """Every state variable ``~ U[-0.05, 0.05]``, from the env's seeded generator."""
        x, x_dot, theta, theta_dot = self.np_random.uniform(-RESET_RANGE, RESET_RANGE, size=4)
        self.set_state(np.array([x, theta]), np.array([x_dot, theta_dot]))
        return self._get_obs()
