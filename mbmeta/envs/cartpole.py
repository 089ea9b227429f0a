"""The ``cartpole`` family: MuJoCo cart-pole swing-up with varied actuator force and pole length.

Environment ``mbmeta/CartPoleSwingUp-v0`` (200-step episodes, ``dt = 0.05`` s = 5 MuJoCo steps of 0.01 s):

- observation ``[x, cos θ, sin θ, xdot, θdot]``: cart position (m), pole angle (``θ = 0`` upright, ``π`` hanging) and
  their velocities; task parameters are never in it;
- action ``[a]`` in ``[-1, 1]``; the cart is pushed with ``a × force`` newtons (MuJoCo clamps ``a`` to the range);
- reward, of the state after the step, in ``[0, 1]`` (a smooth swing-up reward in the spirit of dm_control's)::

      upright  = (1 + cos θ') / 2                    0 hanging … 1 upright
      centred  = (1 + exp(-x'²)) / 2                 1 at the rail centre, 1/2 far away
      control  = 1 - 0.2 a²                          (a clamped to [-1, 1]) mild effort penalty
      still    = (1 + exp(-0.04 θdot'²)) / 2        penalise spinning through the top
      reward   = upright · centred · control · still

- terminated when the cart leaves the rail, ``|x'| > 2.4`` m; the pole starts hanging down
  (``θ = π ± 0.05``, ``x, xdot, θdot ∈ ±0.05``).

Physics: 1 kg cart on a frictionless unlimited slider, 0.1 kg uniform pole (its COM and inertia follow its length),
``g = 9.81``. Parameters are absolute, with CaDM's splits: ``force`` (N) train ``{5, 6, …, 15}``, test
``[2, 3.5] ∪ [16.5, 18]``; ``length`` (m) train ``{0.40, 0.45, …, 0.60}``, test ``[0.15, 0.30] ∪ [0.70, 0.85]``. A test
task is out of distribution in both (four regions: weak/strong force × short/long pole).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box
from torch import Tensor

from mbmeta.envs.family import Choice, Interval, Parameter, TaskFamily, TaskParams, held_upright
from mbmeta.envs.registry import register_family
from mbmeta.envs.task_env import TaskEnvMixin

ASSET = os.path.join(os.path.dirname(__file__), "assets", "cartpole.xml")

NOMINAL_FORCE = 10.0  # N per unit action: the motor gear in cartpole.xml
NOMINAL_LENGTH = 0.5  # m: the pole in cartpole.xml
RAIL_LIMIT = 2.4  # m: |x| beyond this ends the episode
FRAME_SKIP = 5  # 5 × 0.01 s per env step
RESET_NOISE = 0.05

_TRAIN_FORCES = tuple(float(f) for f in range(5, 16))
_TRAIN_LENGTHS = (0.40, 0.45, 0.50, 0.55, 0.60)
_WEAK, _STRONG = Interval(2.0, 3.5), Interval(16.5, 18.0)
_SHORT, _LONG = Interval(0.15, 0.30), Interval(0.70, 0.85)


def swingup_reward(x: Any, cos_theta: Any, theta_dot: Any, action: Any, exp: Callable[[Any], Any]) -> Any:
    """The swing-up reward (see the module docstring): one expression for floats and tensors.

    Args:
        x: ``[*S]`` cart position after the step.
        cos_theta: ``[*S]`` cosine of the pole angle after the step (1 upright).
        theta_dot: ``[*S]`` pole angular velocity after the step.
        action: ``[*S]`` action, already clamped to ``[-1, 1]``.
        exp: the exponential matching the inputs (``math.exp`` or ``torch.exp``).

    Returns:
        ``[*S]`` reward in ``[0, 1]``.
    """
    upright = (1.0 + cos_theta) / 2.0
    centred = (1.0 + exp(-(x * x))) / 2.0
    control = 1.0 - 0.2 * action * action
    still = (1.0 + exp(-0.04 * theta_dot * theta_dot)) / 2.0
    return upright * centred * control * still


def apply_cartpole_task(mj_model: mujoco.MjModel, nominal: Mapping[str, np.ndarray], task: TaskParams) -> None:
    """Write the task into the model: motor gear = ``force``; pole COM, inertia and geometry follow ``length``.

    Args:
        mj_model: the model to modify in place.
        nominal: copies of ``actuator_gear``, ``body_ipos``, ``body_inertia``, ``geom_pos``, ``geom_size`` as built.
        task: validated task with ``force`` (N) and ``length`` (m).
    """
    force_scale = task["force"] / NOMINAL_FORCE
    length_scale = task["length"] / NOMINAL_LENGTH
    mj_model.actuator_gear[0, 0] = nominal["actuator_gear"][0, 0] * force_scale
    pole = mj_model.body("pole").id
    mj_model.body_ipos[pole] = nominal["body_ipos"][pole] * length_scale
    # a uniform rod's inertia about its centre grows with length²; the tiny axial term is left as is
    inertia = nominal["body_inertia"][pole].copy()
    inertia[:2] *= length_scale * length_scale
    mj_model.body_inertia[pole] = inertia
    geom = mj_model.geom("pole").id
    mj_model.geom_pos[geom] = nominal["geom_pos"][geom] * length_scale
    mj_model.geom_size[geom, 1] = nominal["geom_size"][geom, 1] * length_scale  # capsule half-length


class CartPoleFamily(TaskFamily):
    """Cart-pole swing-up with varied actuator force and pole length (CaDM's cart-pole splits)."""

    name = "cartpole"
    env_id = "mbmeta/CartPoleSwingUp-v0"
    description = "MuJoCo cart-pole swing-up from hanging; actuator force (N) and pole length (m) vary"
    parameters = (
        Parameter("force", NOMINAL_FORCE, "actuator force in newtons per unit action (absolute)"),
        Parameter("length", NOMINAL_LENGTH, "pole length in metres (absolute; mass fixed at 0.1 kg)"),
    )
    train = ({"force": Choice(_TRAIN_FORCES), "length": Choice(_TRAIN_LENGTHS)},)
    test = tuple({"force": f, "length": ln} for f in (_WEAK, _STRONG) for ln in (_SHORT, _LONG))
    episode_steps = 200
    bare_env_entry_point = "mbmeta.envs.cartpole:CartPoleBareEnv"  # same model without the task layer (benchmarks)
    notes = (
        "Own MuJoCo model (1 kg cart, 0.1 kg uniform pole), dt 0.05 s; obs [x, cos θ, sin θ, xdot, θdot]; "
        "reward upright·centred·control·still in [0, 1] of the next state; terminates when |x| > 2.4 m."
    )

    def make_env(self, **kwargs: Any) -> gym.Env:
        """``gymnasium.make("mbmeta/CartPoleSwingUp-v0", **kwargs)`` (kwargs: ``task``, ``render_mode``...)."""
        return gym.make(self.env_id, **kwargs)

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Swing-up reward of ``next_obs``: ``[*S, 5], [*S, 1], [*S, 5] -> [*S]``."""
        a = action[..., 0].to(next_obs.dtype).clamp(-1.0, 1.0)
        return swingup_reward(next_obs[..., 0], next_obs[..., 1], next_obs[..., 4], a, torch.exp)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """The cart left the rail: ``|x'| > 2.4``, ``[*S]`` bool."""
        return next_obs[..., 0].abs() > RAIL_LIMIT

    success_text = "cart kept on the rail and pole upright (within 0.3 rad) over the last 10% of the episode"

    def success(self, episode: Mapping[str, np.ndarray]) -> bool:
        """Stayed on the rail, and the pole was within 0.3 rad of upright over the last 10% (``obs[1]`` is cos θ)."""
        return bool(not episode["terminated"].any()) and held_upright(episode["next_obs"][:, 1])


FAMILY = register_family(CartPoleFamily(), "mbmeta.envs.cartpole:CartPoleEnv")


class CartPoleBareEnv(MujocoEnv):
    """The cart-pole without the task layer (fixed nominal physics); the benchmark's baseline.

    Args:
        render_mode: ``None``, ``"human"``, ``"rgb_array"`` or ``"depth_array"``.
        width: render width in pixels.
        height: render height in pixels.
        default_camera_config: MuJoCo free-camera settings (defaults to a side view of the whole rail).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        default_camera_config: dict[str, Any] | None = None,
    ) -> None:
        high = np.array([np.inf, 1.0, 1.0, np.inf, np.inf])
        camera = {"distance": 5.5, "azimuth": 90.0, "elevation": -10.0, "lookat": np.array([0.0, 0.0, 1.0])}
        MujocoEnv.__init__(
            self,
            ASSET,
            FRAME_SKIP,
            observation_space=Box(low=-high, high=high, dtype=np.float64),
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=default_camera_config or camera,
        )

    def _get_obs(self) -> np.ndarray:
        x, theta = self.data.qpos
        x_dot, theta_dot = self.data.qvel
        return np.array([x, math.cos(theta), math.sin(theta), x_dot, theta_dot])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Push the cart for ``dt = 0.05`` s.

        Args:
            action: ``[1]`` in ``[-1, 1]``.

        Returns:
            ``(next_obs [5], reward, terminated, truncated=False, info)``.
        """
        self._simulate(action)
        obs = self._get_obs()
        a = min(max(float(action[0]), -1.0), 1.0)
        # the same expression as CartPoleFamily.reward, on the observation's values
        reward = swingup_reward(obs[0], obs[1], obs[4], a, math.exp)
        terminated = bool(abs(obs[0]) > RAIL_LIMIT)
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, False, {}

    def _simulate(self, action: np.ndarray) -> None:
        self.do_simulation(action, self.frame_skip)

    def reset_model(self) -> np.ndarray:
        """Pole hanging (``θ = π``) plus uniform noise of ±0.05 on every coordinate, from the seeded generator."""
        noise = self.np_random.uniform(-RESET_NOISE, RESET_NOISE, size=4)
        self.set_state(np.array([noise[0], math.pi + noise[1]]), noise[2:])
        return self._get_obs()


class CartPoleEnv(TaskEnvMixin, CartPoleBareEnv):
    """``mbmeta/CartPoleSwingUp-v0``: the cart-pole with a task (actuator force and pole length).

    Args:
        task: initial task (``TaskParams`` or dict with ``force`` and ``length``); the nominal one if None.
        **kwargs: rendering arguments of :class:`CartPoleBareEnv`.
    """

    family = FAMILY
    apply_task = staticmethod(apply_cartpole_task)

    def __init__(self, task: TaskParams | Mapping[str, float] | None = None, **kwargs: Any) -> None:
        CartPoleBareEnv.__init__(self, **kwargs)
        self._init_task(("actuator_gear", "body_ipos", "body_inertia", "geom_pos", "geom_size"), task)

    def _simulate(self, action: np.ndarray) -> None:
        # step() has checked the action (shape, NaN/inf): skip do_simulation's second shape check
        self._step_mujoco_simulation(action, self.frame_skip)
