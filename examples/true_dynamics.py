"""MuJoCo itself as the model: plan with each task's true dynamics, no learning (docs/bring_your_own_robot.md).

Two recipes of the guide in one file:

- :class:`MujocoDynamics` implements the :class:`mbmeta.AdaptedDynamics` protocol with copies of the simulator's
  model (one per environment, its task applied), stepped by ``mujoco.rollout`` for all candidate rows at once;
  :class:`KnownTask` wraps it as a :class:`mbmeta.MetaDynamics` for the ``MPCAgent``.
- :func:`plan_episode` runs a planner on its own, with :class:`mbmeta.planners.RecedingHorizon` and the rollout
  objective, no agent.

``python true_dynamics.py`` plans one pendulum episode of a test task and prints its return beside random actions'.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import mujoco
import numpy as np
import torch
from mujoco import rollout
from torch import Tensor

from mbmeta import Prediction, TaskParams, Transition
from mbmeta.control import RolloutObjective
from mbmeta.envs import TaskFamily, get_family
from mbmeta.envs.pendulum import MAX_SPEED
from mbmeta.planners import CEMPlanner, RecedingHorizon

StateOf = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # obs [R, O] -> qpos [R, nq], qvel [R, nv]
ObsOf = Callable[[np.ndarray, np.ndarray], np.ndarray]  # qpos [R, nq], qvel [R, nv] -> obs [R, O]


class MujocoDynamics:
    """The true dynamics of B environments: one copy of each one's MuJoCo model, stepped ``frame_skip`` times.

    An :class:`mbmeta.AdaptedDynamics` with one ensemble member and no variance; it predicts no reward (plan with
    the family's exact reward). The observation must determine the simulator state: ``state_of`` recovers it and
    ``obs_of`` observes the state after the step.

    Args:
        mj_models: B models (copied now, so later changes to the envs do not leak in).
        frame_skip: MuJoCo steps per env step.
        state_of: ``obs [R, O] -> (qpos [R, nq], qvel [R, nv])``, float64 NumPy.
        obs_of: ``(qpos [R, nq], qvel [R, nv]) -> obs [R, O]``.
    """

    ensemble_size = 1

    def __init__(self, mj_models: list[mujoco.MjModel], frame_skip: int, state_of: StateOf, obs_of: ObsOf) -> None:
        self.mj_models = [copy.deepcopy(m) for m in mj_models]
        self.frame_skip = frame_skip
        self.state_of, self.obs_of = state_of, obs_of
        self.mj_data = mujoco.MjData(self.mj_models[0])
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.template = np.zeros(mujoco.mj_stateSize(self.mj_models[0], spec))
        mujoco.mj_getState(self.mj_models[0], self.mj_data, self.template, spec)  # time, qpos, qvel, act, ...
        self.nq, self.nv = self.mj_models[0].nq, self.mj_models[0].nv

    def __call__(self, obs: Tensor, action: Tensor) -> Prediction:
        """Step every row: ``obs [E=1, B, *S, O]``, ``action [E=1, B, *S, A]`` -> mean ``[1, B, *S, O]``."""
        batch, obs_dim = obs.shape[1], obs.shape[-1]
        rows = obs[0].reshape(batch, -1, obs_dim).shape[1]  # R rows per environment
        qpos, qvel = self.state_of(obs.reshape(-1, obs_dim).double().cpu().numpy())
        state = np.tile(self.template, (batch * rows, 1))
        state[:, 1 : 1 + self.nq], state[:, 1 + self.nq : 1 + self.nq + self.nv] = qpos, qvel
        control = action.reshape(batch * rows, 1, -1).double().cpu().numpy()  # held for frame_skip steps
        models = [m for m in self.mj_models for _ in range(rows)]
        states, _ = rollout.rollout(models, self.mj_data, state, control, nstep=self.frame_skip)
        final = states[:, -1]
        next_obs = self.obs_of(final[:, 1 : 1 + self.nq], final[:, 1 + self.nq : 1 + self.nq + self.nv])
        mean = torch.as_tensor(next_obs, dtype=obs.dtype, device=obs.device).reshape(obs.shape)
        return Prediction(mean, torch.zeros_like(mean), None)


class KnownTask:
    """A :class:`mbmeta.MetaDynamics` that needs no context: the true dynamics of known tasks, for ``MPCAgent``."""

    def __init__(self, dynamics: MujocoDynamics) -> None:
        self.dynamics = dynamics

    def adapt(self, context: Transition, mask: Tensor | None = None, task: Tensor | None = None) -> MujocoDynamics:
        """The same true dynamics whatever the context (``context`` fields ``[B, K, ...]`` are ignored)."""
        return self.dynamics


def pendulum_state(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[cos θ, sin θ, θdot]`` -> ``qpos [R, 1]``, ``qvel [R, 1]`` of ``mbmeta/Pendulum-v0``."""
    return np.arctan2(obs[:, 1:2], obs[:, 0:1]), obs[:, 2:3]


def pendulum_obs(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """The pendulum's observation after a step (its env clips the speed to ±8 rad/s after each step)."""
    return np.concatenate([np.cos(qpos), np.sin(qpos), np.clip(qvel, -MAX_SPEED, MAX_SPEED)], axis=1)


def plan_episode(
    family: TaskFamily, task: TaskParams, steps: int, *, seed: int = 0, population: int = 100, horizon: int = 15
) -> float:
    """The return of one episode planned with the true dynamics: a planner on its own, re-planning every step."""
    env = family.make_env(max_episode_steps=steps)
    obs, _ = env.reset(seed=seed, options={"task": task})  # the task is in the model before it is copied
    dynamics = MujocoDynamics([env.unwrapped.model], env.unwrapped.frame_skip, pendulum_state, pendulum_obs)
    low, high = env.action_space.low, env.action_space.high
    mpc = RecedingHorizon(CEMPlanner(low, high, population=population, elites=10, iterations=3), horizon, seed=seed)
    total, done = 0.0, False
    while not done:
        start = torch.as_tensor(obs, dtype=torch.float32)[None]  # [B=1, O]
        objective = RolloutObjective(
            dynamics, start, family.reward, family.terminated, propagation="expectation", particles=1, sample=False
        )
        action = mpc.plan(objective).actions[0, 0].numpy()  # the first step; the rest warm-starts the next call
        obs, reward, terminated, truncated, _ = env.step(action)
        total, done = total + float(reward), terminated or truncated
    env.close()
    return total


def random_episode(family: TaskFamily, task: TaskParams, steps: int, *, seed: int = 0) -> float:
    """The return of one episode of uniformly random actions (the baseline)."""
    env = family.make_env(max_episode_steps=steps)
    env.reset(seed=seed, options={"task": task})
    env.action_space.seed(seed)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total, done = total + float(reward), terminated or truncated
    env.close()
    return total


if __name__ == "__main__":
    pendulum = get_family("pendulum")
    test_task = pendulum.sample(np.random.default_rng(0), 1, "test")[0]
    planned, random = plan_episode(pendulum, test_task, 200), random_episode(pendulum, test_task, 200)
    print(f"pendulum {dict(test_task)}: true-dynamics MPC {planned:.1f}, random actions {random:.1f}")
