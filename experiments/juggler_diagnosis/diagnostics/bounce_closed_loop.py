"""Step 8 of the diagnosis: does the learned bounce model fail to predict strikes, or does the planner miss them?

Along episodes that iCEM plans with MuJoCo itself as the model (the 25 Hz servo bounce arm, the learned agent's
planner settings, H = 15 = 0.6 s), at every step three 15-step plans are scored both by the learned model (the
agent's expectation rollout through the adapted ensemble, exact reward, termination masked) and by MuJoCo (exact
rollout from the full physics state):

- the *true-model plan* (what the MuJoCo-model planner chose and executed);
- the *learned plan* (what iCEM finds with the same settings when the learned model scores the candidates; planned
  beside the episode, never executed);
- the *zero plan* (servo targets at home for 15 steps) as a floor.

If the learned model scores the true-model plan near its true value and above its own plan, its planner misses a
plan the model already rates (search); if it scores it below its own plan, the model does not see the strike (the
model); if it scores its own plan far above that plan's true value, the planner exploits model error. Train tasks only.

Usage::

    python experiments/juggler_diagnosis/diagnostics/bounce_closed_loop.py \
        --checkpoint experiments/juggler_bounce_servo/pilot/none-10k-seed0/checkpoints/iteration_006.ckpt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mujoco
import numpy as np
import torch
from hybrid_fit import HybridDynamics, load_contact
from mujoco import rollout

from mbmeta.control.agent import MPCAgent
from mbmeta.control.objective import RolloutObjective
from mbmeta.envs import get_family
from mbmeta.envs.juggler import (
    BOUNCE_APEX,
    BOUNCE_APEX_TOLERANCE,
    FRAME_SKIP,
    I_BALL_X,
    bounce_apexes,
    control_cost,
    paddle_pose,
    predicted_apex,
)
from mbmeta.planners import ICEMPlanner, RecedingHorizon

PLANS = ("true-model plan", "learned plan", "zero plan")


class TrueObjective:
    """MuJoCo as the model: ``actions [1, N, H, A] -> [1, N]`` exact returns from the env's current physics state.

    Each action is held for the env's ``FRAME_SKIP · action_repeat`` MuJoCo steps; the family's reward is summed over
    the 25 Hz steps, masked after the first one that loses the ball (its own reward counts), as the agent masks.
    """

    def __init__(self, env, family) -> None:
        base = env.unwrapped
        self.family, self.model, self.data = family, base.model, base.data
        self.scratch = mujoco.MjData(self.model)
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.state = np.zeros(mujoco.mj_stateSize(self.model, self.spec))
        self.sub = FRAME_SKIP * base.action_repeat
        self.obs = None

    def capture(self, obs: np.ndarray) -> None:
        """Take the env's current physics state (and its observation ``[O]``) as the rollouts' start."""
        mujoco.mj_getState(self.model, self.data, self.state, self.spec)
        self.obs = torch.as_tensor(obs, dtype=torch.float32)

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        """Exact returns ``[1, N]`` of the candidate action sequences ``[1, N, H, A]``."""
        n = actions.shape[1]
        ctrl = np.repeat(actions[0].clamp(-1, 1).double().numpy(), self.sub, axis=1)  # [N, H·sub, A]
        states, _ = rollout.rollout(self.model, self.scratch, np.tile(self.state, (n, 1)), ctrl)
        coarse = states[:, self.sub - 1 :: self.sub]  # [N, H, nstate] after each env step
        nq, nv = self.model.nq, self.model.nv
        qpos, qvel = coarse[..., 1 : 1 + nq], coarse[..., 1 + nq : 1 + nq + nv]
        nxt = np.concatenate(
            [qpos[..., :3], qvel[..., :3], paddle_pose(qpos[..., :3]), qpos[..., 3:5], qvel[..., 3:6]], -1
        )
        nxt = torch.as_tensor(nxt, dtype=torch.float32)  # [N, H, O] (world frame, as juggler_bounce_servo observes)
        prev = torch.cat([self.obs.expand(n, 1, -1), nxt[:, :-1]], 1)
        act = actions[0].float()
        reward = self.family.reward(prev, act, nxt)  # [N, H]
        lost = self.family.terminated(prev, act, nxt)
        alive = torch.cumprod(torch.cat([torch.ones(n, 1), (~lost[:, :-1]).float()], 1), 1)
        return (reward * alive).sum(1)[None]


class HeldActionObjective:
    """A learned model of a ``k``-times faster control rate, each planned action held for its ``k`` model steps.

    ``actions [1, N, H, A] -> [1, N]``: expectation over the ensemble (mean of the members' means) at every model
    step; the family's reward and loss are counted at every ``k``-th model step only, i.e. at the env's own steps,
    so the values compare with :class:`TrueObjective`'s. For a model fitted on data recorded at ``k`` times the
    family's rate (``bounce_drop_heights.py --repeat``); it ignores the context (plain ``none`` models).
    """

    def __init__(self, dynamics, obs: torch.Tensor, family, k: int, reward_fn=None) -> None:
        self.dynamics, self.obs, self.family, self.k = dynamics, obs, family, k
        self.reward_fn = family.reward if reward_fn is None else reward_fn

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        """Returns ``[1, N]`` of the candidates ``[1, N, H, A]``."""
        batch, n, horizon, _ = actions.shape
        members = int(self.dynamics.ensemble_size)
        state = self.obs[:, None, :].expand(batch, n, self.obs.shape[-1])
        total = torch.zeros(batch, n)
        alive = torch.ones(batch, n, dtype=torch.bool)
        for t in range(horizon):
            action, start = actions[:, :, t], state
            for _ in range(self.k):
                state = self.dynamics(state.expand(members, *state.shape), action.expand(members, *action.shape))
                state = state.mean.mean(dim=0)
            total += torch.where(alive, self.reward_fn(start, action, state), 0.0)
            alive &= ~self.family.terminated(start, action, state)
        return total


def planning_reward(scale: float):
    """The bounce reward with the apex term's length scale ``scale`` m (the task's is 0.25) for the learned planner.

    ``(obs [*S, O], action [*S, A], next_obs [*S, O]) -> [*S]``, world-frame observations.
    """

    def reward(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        error = (predicted_apex(next_obs) - BOUNCE_APEX[1]).abs() + (next_obs[..., I_BALL_X] - BOUNCE_APEX[0]).abs()
        return torch.exp(-error / scale) - control_cost(action)

    return reward


def _rollout_objectives(
    adapted, obs: torch.Tensor, family, agent: MPCAgent, objective_kwargs: dict, reward_scale: float
):
    """The agent's rollout objective with the task's reward (values), and the one its planner searches with."""

    def objective(reward_fn):
        return RolloutObjective(
            adapted, obs, reward_fn, family.terminated, generator=agent.generator, **objective_kwargs
        )

    values = objective(family.reward)
    # A broader apex term for the learned planner's search only; values always use the task's reward.
    return values, (values if reward_scale == 0.25 else objective(planning_reward(reward_scale)))


def run_episode(
    family,
    task,
    agent: MPCAgent,
    *,
    steps: int,
    horizon: int,
    seed: int,
    planner_kwargs: dict,
    objective_kwargs: dict,
    reward_scale: float = 0.25,
    drive: str = "true",
    model_repeat: int = 1,
    contact=None,
):
    """One episode driven by the MuJoCo-model planner (``drive="true"``) or the learned one (``"learned"``).

    Returns a dict of arrays ``[T]``: ``true/<plan>``, ``model/<plan>`` for each plan in :data:`PLANS`, ``reward``
    (the executed step's reward), and the episode's length.
    """
    env = family.make_env(max_episode_steps=steps)
    obs, _ = env.reset(seed=seed, options={"task": task})
    true_objective = TrueObjective(env, family)
    low, high = env.action_space.low, env.action_space.high
    true_mpc = RecedingHorizon(ICEMPlanner(low, high, **planner_kwargs), horizon, seed=seed)
    learned_mpc = RecedingHorizon(ICEMPlanner(low, high, **planner_kwargs), horizon, seed=seed + 1000)
    agent.reset(1)
    zero = torch.zeros(1, 1, horizon, env.action_space.shape[0])
    record: dict[str, list[float]] = {f"{kind}/{p}": [] for kind in ("true", "model") for p in PLANS}
    record["reward"] = []
    visited, length = [], 0
    with torch.no_grad():
        for _ in range(steps):
            true_objective.capture(obs)
            true_plan = true_mpc.plan(true_objective).actions[:, None]  # [1, 1, H, A]
            if not length:  # no transition yet: allocate the (empty) context window
                agent.observe(obs, np.zeros(3), obs, valid=np.zeros(1, bool))
            adapted = agent.dynamics.adapt(*agent.context, None)
            if contact is not None:  # step 10's hybrid: the learned arm, the simulated ball
                adapted = HybridDynamics(adapted, contact)
            if model_repeat > 1:
                learned_objective = HeldActionObjective(adapted, true_objective.obs[None], family, model_repeat)
                search = learned_objective
                if reward_scale != 0.25:
                    search = HeldActionObjective(
                        adapted, true_objective.obs[None], family, model_repeat, planning_reward(reward_scale)
                    )
            else:
                learned_objective, search = _rollout_objectives(
                    adapted, true_objective.obs[None], family, agent, objective_kwargs, reward_scale
                )
            learned_plan = learned_mpc.plan(search).actions[:, None]
            plans = {"true-model plan": true_plan, "learned plan": learned_plan, "zero plan": zero}
            for name, plan in plans.items():
                record[f"true/{name}"].append(float(true_objective(plan)[0, 0]))
                record[f"model/{name}"].append(float(learned_objective(plan)[0, 0]))
            action = (true_plan if drive == "true" else learned_plan)[0, 0, 0].numpy()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.observe(obs, action, next_obs)
            record["reward"].append(reward)
            visited.append(next_obs)
            obs, length = next_obs, length + 1
            if terminated or truncated:
                break
    env.close()
    apexes = bounce_apexes(np.array(visited))
    record["target apexes"] = np.array([(np.abs(apexes - BOUNCE_APEX[1]) <= BOUNCE_APEX_TOLERANCE).sum()])
    return {k: np.array(v) for k, v in record.items()}, length


def summarise(records: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Means over every planning step of every episode, and how often the model ranks each plan first."""
    cat = {k: np.concatenate([r[k] for r in records]) for k in records[0]}
    out = {k: float(v.mean()) for k, v in cat.items() if k != "target apexes"}
    out["target apexes per episode"] = [int(r["target apexes"][0]) for r in records]
    out["steps"] = int(len(cat["reward"]))
    out["model prefers true-model plan"] = float((cat["model/true-model plan"] > cat["model/learned plan"]).mean())
    strong = cat["true/true-model plan"] > 3.0  # windows whose plan really bounces the ball to the apex band
    out["strong windows"] = int(strong.sum())
    if strong.any():
        for p in PLANS:
            out[f"strong: true/{p}"] = float(cat[f"true/{p}"][strong].mean())
            out[f"strong: model/{p}"] = float(cat[f"model/{p}"][strong].mean())
    return out


def main(argv: list[str] | None = None) -> None:
    """Print, per train task and overall, the true and learned values of the three plans."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a learned model of juggler_bounce_servo (mbmeta train)")
    p.add_argument("--tasks", type=int, default=4, help="train tasks (drawn as step 6 draws them)")
    p.add_argument("--steps", type=int, default=125, help="env steps per episode (25 Hz)")
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--propagation", default="expectation", choices=["expectation", "ts1", "tsinf"])
    p.add_argument("--particles", type=int, default=1, help="per candidate (1 for expectation)")
    p.add_argument("--penalty", type=float, default=0.0, help="the learned objective's disagreement penalty")
    p.add_argument("--reward_scale", type=float, default=0.25, help="m; the learned planner's apex-term scale")
    p.add_argument(
        "--model_repeat", type=int, default=1, help="model steps per env step (a model fitted at k x 25 Hz; `none`)"
    )
    p.add_argument(
        "--contact", default=None, help="step 10: plan with the hybrid model, this fitted contact (hybrid_fit.py --out)"
    )
    p.add_argument("--drive", default="true", choices=["true", "learned"], help="whose plan the episode executes")
    p.add_argument("--out", default=None, help="write the summary as JSON here")
    args = p.parse_args(argv)
    if args.model_repeat > 1 and (args.propagation != "expectation" or args.penalty):
        p.error("--model_repeat > 1 plans with the expectation over the ensemble and no penalty")
    torch.set_num_threads(1)
    family = get_family("juggler_bounce_servo")
    tasks = family.sample(np.random.default_rng(123), args.tasks, "train")
    planner_kwargs = {"population": args.population, "elites": max(4, args.population // 8), "iterations": 3}
    planner_kwargs["iterations"] = args.iterations
    space = family.action_space
    agent = MPCAgent.from_checkpoint(
        args.checkpoint,
        ICEMPlanner(space.low, space.high, **planner_kwargs),
        family.reward,
        family.terminated,
        horizon=args.horizon,
        context_length=10,
        propagation=args.propagation,
        particles=args.particles,
    )
    objective_kwargs = {
        "propagation": args.propagation,
        "particles": args.particles,
        "disagreement_penalty": args.penalty,
    }
    contact = None if args.contact is None else load_contact(args.contact)
    records = []
    for i, task in enumerate(tasks):
        record, length = run_episode(
            family,
            task,
            agent,
            steps=args.steps,
            horizon=args.horizon,
            seed=i,
            planner_kwargs=planner_kwargs,
            objective_kwargs=objective_kwargs,
            reward_scale=args.reward_scale,
            drive=args.drive,
            model_repeat=args.model_repeat,
            contact=contact,
        )
        records.append(record)
        parts = ", ".join(
            f"{p}: true {record[f'true/{p}'].mean():.2f} model {record[f'model/{p}'].mean():.2f}" for p in PLANS
        )
        print(
            f"task {i}: kept {length}/{args.steps}, return {record['reward'].sum():.1f}, "
            f"target apexes {int(record['target apexes'][0])}; mean 15-step values: {parts}",
            flush=True,
        )
    summary = summarise(records)
    for k, v in summary.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    if args.out:
        Path(args.out).write_text(json.dumps({"checkpoint": args.checkpoint, **vars(args), **summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
