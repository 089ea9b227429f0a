"""How far a model's plans over-promise: planned H-step return against the return the env then delivers.

For each checkpoint, one MPC episode on one task (the agent settings of the run's ``config.json``). At every step t it
records the planner's return for the chosen plan (``PlanResult.returns``: the elite mean over the H steps), the
H-step return the episode then realised (rewards t .. t+H-1), the model's one-step error on the transition it just
saw (ensemble-mean prediction of the adapted model, in units of the run's state-change std) and the ensemble's
disagreement on it; and the same error when the model is adapted instead on K random-action transitions of the same
task (collected before the episode), which separates a context unlike the training contexts from a poor model.
Last, every model's median one-step error on every model's episode (adapted on the K preceding transitions), which
compares the models on the same states and actions.
A model the planner exploits promises much more than it delivers, on-policy, even where its error on other data is
small.

Usage: ``python experiments/halfcheetah_mass_56k/diagnostics/planning_optimism.py CONFIG_JSON TASK_JSON STEPS SEED CKPT
[CKPT ...]``
e.g. ``... /tmp/run/config.json '{"mass_scale": 1.0}' 300 0 /tmp/run/checkpoints/iteration_001.ckpt``.
"""

import argparse
import json

import numpy as np
import torch

from mbmeta.control.factory import make_agent
from mbmeta.control.plan_stats import PlanStats
from mbmeta.control.settings import AgentSettings
from mbmeta.envs import get_family
from mbmeta.models.checkpoint import load_dynamics
from mbmeta.types import Transition


class RecordingStats(PlanStats):
    """Plan statistics that also keep each call's planned return of environment 0."""

    def __init__(self) -> None:
        super().__init__()
        self.planned: list[float] = []

    def record(self, **kwargs) -> None:  # noqa: D102
        self.planned.append(float(kwargs["returns"][0]))
        super().record(**kwargs)


def random_context(family, task, k: int, seed: int) -> tuple[Transition, torch.Tensor]:
    """K random-action transitions of the task: a context window ``[1, K, ...]`` and its all-True mask."""
    env = family.make_env()
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed + 1, options={"task": task})
    fields = []
    for _ in range(k):
        action = env.action_space.sample()
        next_obs, reward, terminated, _, _ = env.step(action)
        fields.append((obs, action, next_obs, reward, terminated))
        obs = next_obs
    env.close()
    window = Transition(*(torch.as_tensor(np.array(f))[None].to(torch.float32) for f in zip(*fields, strict=True)))
    window = window._replace(terminated=window.terminated.bool())
    return window, torch.ones(1, k, dtype=torch.bool)


def one_step(model, adapted, obs, action, next_obs) -> tuple[float, float]:
    """Squared error of the ensemble-mean prediction and the members' variance, in state-change std units."""
    e, delta_std = model.ensemble_size, model.normaliser.delta_std
    o = torch.as_tensor(obs, dtype=torch.float32).expand(e, 1, 1, -1)
    a = torch.as_tensor(action, dtype=torch.float32).expand(e, 1, 1, -1)
    with torch.no_grad():
        pred = adapted(o, a, with_reward=False).mean[:, 0, 0]  # [E, O]
    error = ((pred.mean(0) - torch.as_tensor(next_obs, dtype=torch.float32)) / delta_std).square().mean()
    return float(error), float((pred.var(0, correction=0) / delta_std.square()).mean())


def trajectory_errors(model, trajectory: Transition, k: int) -> np.ndarray:
    """``[T]`` one-step errors (as :func:`one_step`) on a ``[T, ...]`` trajectory, adapted on the K preceding steps."""
    t = trajectory.obs.shape[0]
    padded = Transition(*(torch.cat([torch.zeros_like(f[:k]).expand(k, *f.shape[1:]), f]) for f in trajectory))
    index = torch.arange(t)[:, None] + torch.arange(k)  # window of step i: padded rows i .. i+K-1 = steps i-K .. i-1
    e, delta_std = model.ensemble_size, model.normaliser.delta_std
    with torch.no_grad():
        adapted = model.adapt(Transition(*(f[index] for f in padded)), index >= k)
        pred = adapted(
            trajectory.obs[None, :, None].expand(e, -1, -1, -1), trajectory.action[None, :, None].expand(e, -1, -1, -1)
        )
    return ((pred.mean.mean(0)[:, 0] - trajectory.next_obs) / delta_std).square().mean(-1).numpy()


def episode(ckpt: str, config: dict, task: dict, steps: int, seed: int) -> tuple[dict[str, float], Transition]:
    """Run one episode with the checkpoint's model; the optimism and error statistics, and the ``[T, ...]`` episode."""
    family = get_family(config["loop"]["family"])
    task = family.validate(task)
    model = load_dynamics(ckpt).eval()
    agent = make_agent(model, family, AgentSettings.from_config(config["agent"]), seed=seed)
    agent.plan_stats = RecordingStats()
    with torch.no_grad():
        fixed = model.adapt(*random_context(family, task, agent.context_length, seed))
    env = family.make_env()
    obs, _ = env.reset(seed=seed, options={"task": task})
    agent.reset()
    rewards, errors, disagreement, fixed_errors, steps_seen = [], [], [], [], []
    for _ in range(steps):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        with torch.no_grad():
            own = model.adapt(*agent.context)  # the context the agent planned with
        error, spread = one_step(model, own, obs, action, next_obs)
        errors.append(error)
        disagreement.append(spread)
        fixed_errors.append(one_step(model, fixed, obs, action, next_obs)[0])
        agent.observe(obs, action, next_obs)
        steps_seen.append((obs, action, next_obs, reward, terminated))
        rewards.append(float(reward))
        obs = next_obs
        if terminated or truncated:
            break
    env.close()
    h = agent.horizon
    realised = np.convolve(rewards, np.ones(h), mode="valid")  # [T - H + 1]: return of steps t .. t+H-1
    planned = np.asarray(agent.plan_stats.planned[: len(realised)])
    trajectory = Transition(*(torch.as_tensor(np.array(f), dtype=torch.float32) for f in zip(*steps_seen, strict=True)))
    stats = {
        "episode return": sum(rewards),
        f"planned {h}-step return": planned.mean(),
        f"realised {h}-step return": realised.mean(),
        "planned / realised": planned.mean() / realised.mean(),
        "one-step error (median)": float(np.median(errors)),
        "one-step error (90th pct)": float(np.percentile(errors, 90)),
        "disagreement (median)": float(np.median(disagreement)),
        "one-step error, random-action context (median)": float(np.median(fixed_errors)),
        "same, 90th pct": float(np.percentile(fixed_errors, 90)),
    }
    return stats, trajectory._replace(terminated=trajectory.terminated.bool())


def main(argv: list[str] | None = None) -> None:
    """Print the statistics of every checkpoint given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the run's config.json (its family and agent settings are used)")
    parser.add_argument("task", help="the task as JSON, e.g. '{\"mass_scale\": 1.0}'")
    parser.add_argument("steps", type=int, help="episode steps at most")
    parser.add_argument("seed", type=int, help="seeds the environment, the random context and planning")
    parser.add_argument("ckpt", nargs="+", help="checkpoints to compare")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = json.loads(open(args.config).read())
    task, steps, seed = json.loads(args.task), args.steps, args.seed
    trajectories = {}
    for ckpt in args.ckpt:
        stats, trajectories[ckpt] = episode(ckpt, config, task, steps, seed)
        print(ckpt, task, f"{steps} steps, seed {seed}")
        for name, value in stats.items():
            print(f"  {name:>48}: {value:.3f}")
    k = AgentSettings.from_config(config["agent"]).context_length
    print("median one-step error of each model (rows) on each model's episode (columns):")
    for ckpt in trajectories:
        model = load_dynamics(ckpt).eval()
        cells = [f"{np.median(trajectory_errors(model, trajectory, k)):.3f}" for trajectory in trajectories.values()]
        print(f"  {ckpt}: {'  '.join(cells)}")


if __name__ == "__main__":
    main()
