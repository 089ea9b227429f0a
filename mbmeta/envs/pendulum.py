"""The ``pendulum`` family: a MuJoCo hinge pendulum that behaves like Gymnasium's classic ``Pendulum-v1``.

Environment ``mbmeta/Pendulum-v0`` (200-step episodes, ``dt = 0.05`` s = 5 MuJoCo steps of 0.01 s):

- observation ``[cos θ, sin θ, θdot]`` with ``θ = 0`` upright (task parameters are never in it);
- action ``[u]``, a torque in ``[-2, 2]`` N·m (MuJoCo clamps to the range; the reward uses the clamped torque);
- reward ``-(θ² + 0.1 θdot² + 0.001 u²)`` of the state *before* the step, ``θ`` normalised to ``(-π, π]``
  (``atan2(sin θ, cos θ)``), as in the classic task; it never terminates;
- start ``θ ~ U[-π, π]``, ``θdot ~ U[-1, 1]``.

Physics: a point mass ``1 kg × mass`` at the end of a massless rod of ``1 m × length``, ``g = 10`` m/s² (the classic
task's value), semi-implicit Euler, no damping. Like the classic task, the angular velocity is clipped to
``[-8, 8]`` rad/s after every step (``MAX_SPEED``); this keeps rewards bounded (>= -16.3), which also keeps the
float32 reward within 1e-5 of the env's. Differences from the classic task: a point mass (``θ̈ = g/l sin θ +
u/(m l²)``) instead of a uniform rod (``3g/(2l) sin θ + 3u/(m l²)``), and five 0.01 s integration steps instead of one
0.05 s step.

:func:`pendulum_dynamics` is the exact closed form of this env's step in torch (the "true model" for planner tests).
Parameters and CaDM splits: ``mass`` and ``length`` scale factors, train each in ``{0.75, 0.80, …, 1.25}``;
test the paired corners ``m{0.2,0.4}/l{1.6,1.8}``, ``m{0.5,0.7}/l{1.3,1.5}``, ``m{1.3,1.5}/l{0.5,0.7}``,
``m{1.6,1.8}/l{0.2,0.4}``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box
from torch import Tensor

from mbmeta.envs.family import Choice, Parameter, TaskFamily, TaskParams, held_upright
from mbmeta.envs.registry import register_family
from mbmeta.envs.task_env import TaskEnvMixin

ASSET = os.path.join(os.path.dirname(__file__), "assets", "pendulum.xml")

# Physical constants of pendulum.xml (checked against the compiled model at env construction).
GRAVITY = 10.0  # m/s²
NOMINAL_MASS = 1.0  # kg, the tip mass
NOMINAL_LENGTH = 1.0  # m
TIP_INERTIA = 1e-6  # kg·m², central inertia of the tip (MuJoCo needs > 0); scaled by mass × length²
TIMESTEP = 0.01  # s, MuJoCo step
FRAME_SKIP = 5  # MuJoCo steps per env step: dt = 0.05 s
MAX_SPEED = 8.0  # rad/s, |θdot| clip after each env step, as in the classic task
MAX_TORQUE = 2.0  # N·m

_TRAIN_SCALES = tuple(round(0.75 + 0.05 * i, 2) for i in range(11))


def pendulum_cost(theta: Any, theta_dot: Any, torque: Any) -> Any:
    """The classic pendulum cost ``θ² + 0.1 θdot² + 0.001 u²``: one expression for floats, arrays and tensors.

    Args:
        theta: ``[*S]`` angle in ``(-π, π]`` (0 upright).
        theta_dot: ``[*S]`` angular velocity.
        torque: ``[*S]`` applied (clamped) torque.

    Returns:
        ``[*S]`` cost (the reward is its negative).
    """
    return theta * theta + 0.1 * theta_dot * theta_dot + 0.001 * torque * torque


def apply_pendulum_task(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """Write the task into the model: tip mass ``× mass``, rod ``× length`` (from ``nominal``, so idempotent).

    Args:
        mj_model: the model to modify in place.
        nominal: copies of ``body_mass``, ``body_inertia``, ``body_ipos``, ``geom_pos``, ``geom_size`` as built.
        task: validated task with ``mass`` and ``length``.
    """
    mass, length = task["mass"], task["length"]
    body = mj_model.body("pendulum").id
    mj_model.body_mass[body] = nominal["body_mass"][body] * mass
    mj_model.body_inertia[body] = nominal["body_inertia"][body] * (mass * length * length)
    mj_model.body_ipos[body] = nominal["body_ipos"][body] * length
    rod, tip = mj_model.geom("rod").id, mj_model.geom("tip").id
    mj_model.geom_pos[rod] = nominal["geom_pos"][rod] * length
    mj_model.geom_size[rod, 1] = nominal["geom_size"][rod, 1] * length  # capsule half-length
    mj_model.geom_pos[tip] = nominal["geom_pos"][tip] * length
    # visual only: the tip sphere's volume follows its mass
    mj_model.geom_size[tip, 0] = nominal["geom_size"][tip, 0] * mass ** (1.0 / 3.0)


def pendulum_dynamics(obs: Tensor, action: Tensor, mass: float | Tensor, length: float | Tensor) -> Tensor:
    """The exact next observation of ``mbmeta/Pendulum-v0`` (its MuJoCo step in closed form), batched in torch.

    Reproduces the env's five semi-implicit Euler steps of ``θ̈ = (m g l sin θ + u) / (m l² + I)`` and the final
    ``|θdot| <= 8`` clip; matches the env to ~1e-14 in float64 and ~1e-6 in float32 (tested: 1e-12 and 1e-5).

    Args:
        obs: ``[*S, 3]`` observations ``[cos θ, sin θ, θdot]``.
        action: ``[*S, 1]`` torques (clamped to ``[-2, 2]`` as the actuator does).
        mass: the task's mass scale, a float or a tensor broadcastable to ``[*S]`` (e.g. ``[B, 1]`` for ``[B, N]``).
        length: the task's length scale, like ``mass``.

    Returns:
        ``[*S, 3]`` next observations, dtype and device of ``obs``.
    """
    if obs.shape[-1] != 3 or action.shape[-1] != 1:
        raise ValueError(f"pendulum_dynamics expects obs [*S, 3] and action [*S, 1], got {obs.shape}, {action.shape}")
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    theta_dot = obs[..., 2]
    torque = action[..., 0].to(obs.dtype).clamp(-MAX_TORQUE, MAX_TORQUE)
    m = NOMINAL_MASS * mass
    arm = NOMINAL_LENGTH * length
    inertia = m * arm * arm + TIP_INERTIA * mass * length * length
    gravity_torque = m * GRAVITY * arm
    h = TIMESTEP
    for _ in range(FRAME_SKIP):  # semi-implicit Euler, as MuJoCo's "Euler" integrator
        theta_dot = theta_dot + h * (gravity_torque * torch.sin(theta) + torque) / inertia
        theta = theta + h * theta_dot
    theta_dot = theta_dot.clamp(-MAX_SPEED, MAX_SPEED)
    return torch.stack((torch.cos(theta), torch.sin(theta), theta_dot), dim=-1)


class PendulumFamily(TaskFamily):
    """Pendulum with varied tip mass and rod length (CaDM's pendulum splits)."""

    name = "pendulum"
    env_id = "mbmeta/Pendulum-v0"
    description = "MuJoCo point-mass pendulum swing-up (classic Pendulum-v1 task); tip mass and rod length vary"
    parameters = (
        Parameter("mass", 1.0, "scale of the tip mass (nominal 1 kg)"),
        Parameter("length", 1.0, "scale of the rod length (nominal 1 m)"),
    )
    train = ({"mass": Choice(_TRAIN_SCALES), "length": Choice(_TRAIN_SCALES)},)
    test = (
        {"mass": Choice((0.2, 0.4)), "length": Choice((1.6, 1.8))},
        {"mass": Choice((0.5, 0.7)), "length": Choice((1.3, 1.5))},
        {"mass": Choice((1.3, 1.5)), "length": Choice((0.5, 0.7))},
        {"mass": Choice((1.6, 1.8)), "length": Choice((0.2, 0.4))},
    )
    episode_steps = 200
    bare_env_entry_point = "mbmeta.envs.pendulum:PendulumBareEnv"  # same model without the task layer (benchmarks)
    notes = (
        "Point mass on a massless rod (classic Pendulum-v1 has a uniform rod); g = 10; 5 Euler steps of 0.01 s per "
        "env step; |θdot| clipped to 8 rad/s as in the classic task. Reward -(θ² + 0.1 θdot² + 0.001 u²) of the "
        "state before the step; never terminates."
    )

    def make_env(self, **kwargs: Any) -> gym.Env:
        """``gymnasium.make("mbmeta/Pendulum-v0", **kwargs)`` (kwargs: ``task``, ``render_mode``, ``width``...)."""
        return gym.make(self.env_id, **kwargs)

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``-(θ² + 0.1 θdot² + 0.001 u²)`` of ``obs``: ``[*S, 3], [*S, 1], [*S, 3] -> [*S]``."""
        theta = torch.atan2(obs[..., 1], obs[..., 0])
        torque = action[..., 0].to(obs.dtype).clamp(-MAX_TORQUE, MAX_TORQUE)
        return -pendulum_cost(theta, obs[..., 2], torque)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Never: ``[*S]`` all False."""
        return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)

    success_text = "upright (within 0.3 rad) over the last 10% of the episode"

    def success(self, episode: Mapping[str, np.ndarray]) -> bool:
        """Swung up and held: within 0.3 rad of upright over the last 10% of the episode (``obs[0]`` is cos θ)."""
        return held_upright(episode["next_obs"][:, 0])


FAMILY = register_family(PendulumFamily(), "mbmeta.envs.pendulum:PendulumEnv")


class PendulumBareEnv(MujocoEnv):
    """The pendulum without the task layer (fixed nominal physics); the benchmark's baseline.

    Args:
        render_mode: ``None``, ``"human"``, ``"rgb_array"`` or ``"depth_array"``.
        width: render width in pixels.
        height: render height in pixels.
        default_camera_config: MuJoCo free-camera settings (defaults to a side view of the swing plane).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        default_camera_config: dict[str, Any] | None = None,
    ) -> None:
        observation_space = Box(
            low=np.array([-1.0, -1.0, -MAX_SPEED]), high=np.array([1.0, 1.0, MAX_SPEED]), dtype=np.float64
        )
        camera = {"distance": 5.0, "azimuth": 90.0, "elevation": 0.0, "lookat": np.zeros(3)}
        MujocoEnv.__init__(
            self,
            ASSET,
            FRAME_SKIP,
            observation_space=observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=default_camera_config or camera,
        )
        if not math.isclose(self.model.opt.timestep, TIMESTEP) or self.model.opt.gravity[2] != -GRAVITY:
            raise RuntimeError("pendulum.xml does not match the constants of mbmeta.envs.pendulum")

    def _get_obs(self) -> np.ndarray:
        theta, theta_dot = self.data.qpos[0], self.data.qvel[0]
        return np.array([math.cos(theta), math.sin(theta), theta_dot])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply a torque for ``dt = 0.05`` s.

        Args:
            action: ``[1]`` torque.

        Returns:
            ``(next_obs [3], reward, terminated=False, truncated=False, info)``.
        """
        q = self.data.qpos[0]
        # the same expression as PendulumFamily.reward, which sees θ only through (cos θ, sin θ) of the obs
        theta = math.atan2(math.sin(q), math.cos(q))
        torque = min(max(float(action[0]), -MAX_TORQUE), MAX_TORQUE)
        reward = -pendulum_cost(theta, float(self.data.qvel[0]), torque)
        self._simulate(action)
        self.data.qvel[0] = min(max(self.data.qvel[0], -MAX_SPEED), MAX_SPEED)
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, False, False, {}

    def _simulate(self, action: np.ndarray) -> None:
        self.do_simulation(action, self.frame_skip)

    def reset_model(self) -> np.ndarray:
        """Draw ``θ ~ U[-π, π]``, ``θdot ~ U[-1, 1]`` from the env's seeded generator."""
        qpos = np.array([self.np_random.uniform(-math.pi, math.pi)])
        qvel = np.array([self.np_random.uniform(-1.0, 1.0)])
        self.set_state(qpos, qvel)
        return self._get_obs()


class PendulumEnv(TaskEnvMixin, PendulumBareEnv):
    """``mbmeta/Pendulum-v0``: the pendulum with a task (tip mass and rod length scales).

    Args:
        task: initial task (``TaskParams`` or dict with ``mass`` and ``length``); the nominal one if None.
        **kwargs: rendering arguments of :class:`PendulumBareEnv`.
    """

    family = FAMILY
    apply_task = staticmethod(apply_pendulum_task)

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        PendulumBareEnv.__init__(self, **kwargs)
        self._init_task(("body_mass", "body_inertia", "body_ipos", "geom_pos", "geom_size"), task)

    def _simulate(self, action: np.ndarray) -> None:
        # step() has checked the action (shape, NaN/inf): skip do_simulation's second shape check
        self._step_mujoco_simulation(action, self.frame_skip)
