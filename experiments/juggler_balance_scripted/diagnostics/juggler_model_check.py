"""Open-loop drift of a learned juggler model on held-out scripted and random-action episodes.

Scripted (noisy controller) episodes are in-distribution for a run seeded with ``--loop.initial_policy scripted``;
random-action episodes are what ``evaluate`` measures on.

Usage: ``python experiments/juggler_balance_scripted/diagnostics/juggler_model_check.py CKPT [--episodes 8]
[--noise 0.5] [--horizon 15]``
Prints the prediction error (MSE in each data set's obs-std units) at horizons 1, 5, 10 and H, per data set.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.control.exploration import NoisyControllerPolicy
from mbmeta.envs import get_family
from mbmeta.evaluation.prediction import prediction_error
from mbmeta.training.checkpoint import load_module


def main(argv: list[str] | None = None) -> None:
    """Collect both data sets on the same tasks and print the model's error at a few horizons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--horizon", type=int, default=15)
    parser.add_argument("--split", default="train", choices=["train", "test"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    family = get_family("juggler_balance")
    module = load_module(args.ckpt)
    env = family.make_env()
    space = env.action_space
    env.close()
    tasks = family.sample(np.random.default_rng(99), args.episodes, split=args.split)
    policies = {
        f"scripted (noise <= {args.noise})": NoisyControllerPolicy(family.make_controller, space, args.noise, seed=99),
        "random actions": RandomPolicy(space, seed=99),
    }
    for name, policy in policies.items():
        data = collect_episodes(policy, args.episodes, family=family, num_envs=args.episodes, tasks=tasks, seed=99)
        lengths = data.buffer.episode_lengths
        horizon = min(args.horizon, int(lengths.max()) - 10)
        error = prediction_error(module, data.buffer, context_length=10, horizon=horizon)
        at = {h: float(error[h - 1]) for h in (1, 5, 10, horizon) if h <= horizon}
        print(f"{args.split} tasks, {name}: episode lengths {sorted(lengths.tolist())}")
        print("  error at h=" + ", ".join(f"{h}: {e:.3f}" for h, e in at.items()))


if __name__ == "__main__":
    main()
