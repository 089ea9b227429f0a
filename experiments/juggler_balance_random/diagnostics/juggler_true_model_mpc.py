"""Is the planner or the learned model the reason the learned Juggler agents drop the ball?

Runs the planner the learned agents use (iCEM 64 × 3 iterations, 8 elites, H = 15, exact reward and
termination, one particle per candidate) with MuJoCo itself as the model: every candidate's next state is simulated
from the state the observation describes (the 14 observations are the full state up to the ball's spin angle, which
does not affect a sphere's dynamics). If this agent balances, the planner and its settings suffice and the learned
models' predictions are what fails.

Slow by design (one Python-driven MuJoCo step per candidate row, ~0.35 s per planning step): a diagnostic, not an
agent.

Usage: ``python experiments/juggler_balance_random/diagnostics/juggler_true_model_mpc.py [TASKS] [STEPS]`` (default:
the first 3 of the 8 test tasks
``mbmeta evaluate --tasks 8`` uses, up to 150 steps each, env seed 0).
"""

import argparse
import time

import mujoco
import numpy as np
import torch

from mbmeta.control.objective import RolloutObjective
from mbmeta.envs import get_family
from mbmeta.envs.juggler import paddle_pose
from mbmeta.evaluation.episodes import evaluation_tasks
from mbmeta.planners.icem import ICEMPlanner
from mbmeta.types import Prediction


class SimulatorDynamics:
    """:class:`~mbmeta.types.AdaptedDynamics` backed by a MuJoCo model (one member, zero variance)."""

    ensemble_size = 1

    def __init__(self, env) -> None:
        self.model = env.unwrapped.model  # carries the task's physics (the env applied it on reset)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = env.unwrapped.frame_skip

    def __call__(self, obs: torch.Tensor, action: torch.Tensor) -> Prediction:
        """``obs [1, B, *S, 14]``, ``action [1, B, *S, 3]`` -> next-observation means of the same shape as obs."""
        rows = obs.reshape(-1, obs.shape[-1]).double().numpy()
        actions = action.reshape(-1, action.shape[-1]).double().numpy()
        out = np.empty_like(rows)
        d = self.data
        for i, (o, a) in enumerate(zip(rows, actions, strict=True)):
            # observation layout: q[3], qd[3], paddle pose[3], ball x, z, ball vx, vz, spin (see OBS_NAMES)
            d.qpos[:] = (*o[:3], o[9], o[10], 0.0)
            d.qvel[:] = (*o[3:6], *o[11:14])
            d.ctrl[:] = np.clip(a, -1.0, 1.0)
            mujoco.mj_forward(self.model, d)
            for _ in range(self.frame_skip):
                mujoco.mj_step(self.model, d)
            out[i] = np.concatenate([d.qpos[:3], d.qvel[:3], paddle_pose(d.qpos[:3]), d.qpos[3:5], d.qvel[3:6]])
        mean = torch.as_tensor(out, dtype=obs.dtype).view(obs.shape)
        return Prediction(mean, torch.zeros_like(mean), None)


def balance_time(family, task, steps: int, horizon: int = 15, seed: int = 0) -> int:
    """Steps the ball was kept (of ``steps``) by iCEM planning through the simulator on ``task``."""
    env = family.make_env()
    obs, _ = env.reset(seed=seed, options={"task": task})
    planner = ICEMPlanner(env.action_space.low, env.action_space.high, population=64, elites=8, iterations=3)
    dynamics, generator = SimulatorDynamics(env), torch.Generator().manual_seed(seed)
    plan = torch.zeros(1, horizon, 3)
    for step in range(1, steps + 1):
        start = torch.as_tensor(obs, dtype=torch.float32)[None]
        objective = RolloutObjective(
            dynamics, start, family.reward, family.terminated, propagation="expectation", particles=1, sample=False
        )
        plan = planner.plan(objective, plan, generator=generator).actions
        obs, _, terminated, truncated, _ = env.step(plan[0, 0].numpy())
        plan = torch.cat([plan[:, 1:], torch.zeros(1, 1, 3)], dim=1)  # warm start: shift by one step
        if terminated or truncated:
            return step
    return steps


def main(argv: list[str] | None = None) -> None:
    """Print the balance time per task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", type=int, nargs="?", default=3, help="the first N of the 8 evaluation tasks")
    parser.add_argument("steps", type=int, nargs="?", default=150, help="steps per episode at most")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_tasks, steps = args.tasks, args.steps
    family = get_family("juggler_balance")
    for task in evaluation_tasks(family, "test", 8, seed=0)[:n_tasks]:
        start = time.perf_counter()
        kept = balance_time(family, task, steps)
        print(f"{task.as_dict()}: ball kept {kept}/{steps} steps ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
