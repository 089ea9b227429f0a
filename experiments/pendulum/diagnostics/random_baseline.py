"""Return of uniformly random actions on the test tasks `mbmeta evaluate` uses (a floor for the results tables).

Usage: ``python experiments/pendulum/diagnostics/random_baseline.py FAMILY [--tasks N] [--episodes_per_task K]``
(also used for HalfCheetah's floor). Same task list as
``mbmeta evaluate`` (``evaluation_tasks``) and the same environment seeds (0, 1, ... per task).
"""

import argparse

import numpy as np

from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks


def main(argv: list[str] | None = None) -> None:
    """Print the mean ± std random-action return over tasks × episodes, and per task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--episodes_per_task", type=int, default=1)
    args = parser.parse_args(argv)
    family = get_family(args.family)
    returns = []
    for task in evaluation_tasks(family, "test", args.tasks, seed=0):
        per_task = []
        for seed in range(args.episodes_per_task):
            env = family.make_env()
            env.action_space.seed(seed)
            env.reset(seed=seed, options={"task": task})
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, done = total + float(reward), terminated or truncated
            env.close()
            per_task.append(total)
        print(task.as_dict(), f"{np.mean(per_task):.1f}")
        returns += per_task
    print(f"random actions, {args.family}: {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")


if __name__ == "__main__":
    main()
