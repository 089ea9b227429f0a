"""Balance time of the scripted controller and of random actions on the tasks ``mbmeta evaluate --tasks 8`` uses.

A reference for the learned agents in experiments/juggler_balance_*: what a working controller (which knows the
nominal robot, not the task) and what uniformly random actions achieve on the same Juggler-balance test tasks and
seeds.

Usage: ``python experiments/juggler_balance_random/diagnostics/juggler_reference.py``
"""

import argparse

import gymnasium as gym
import numpy as np

from mbmeta.control.collection import collect_episodes
from mbmeta.control.factory import make_initial_policy
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks


def random_episode(env_id: str, task, seed: int) -> tuple[int, float]:
    """Steps and return of one episode of uniformly random actions (action noise seeded by ``seed``)."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    env.reset(seed=seed, options={"task": task})
    steps, total, done = 0, 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, total, done = steps + 1, total + reward, terminated or truncated
    env.close()
    return steps, total


def main(argv: list[str] | None = None) -> None:
    """Print mean ± std balance time (steps, of 500) and return over 8 test tasks × seeds 0 and 1."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    family = get_family("juggler_balance")
    tasks = evaluation_tasks(family, "test", 8, seed=0)
    scripted, random = [], []
    for task in tasks:
        for seed in (0, 1):
            policy = make_initial_policy(family, "scripted", noise=0.0)
            stats = collect_episodes(policy, 1, family=family, tasks=[task], seed=seed).episodes[0]
            scripted.append((stats.length, stats.episode_return))
            random.append(random_episode(family.env_id, task, seed))
    for name, rows in (("scripted controller", scripted), ("random actions", random)):
        steps, returns = np.array(rows).T
        print(f"{name}: balance time {steps.mean():.1f} ± {steps.std():.1f} steps, return {returns.mean():.2f}")


if __name__ == "__main__":
    main()
