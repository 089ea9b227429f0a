"""Step 6 of the diagnosis: what uniformly random servo targets show a model of the bounce task.

For each action scale (random actions uniform within ``scale`` of the action box), one episode on each of 32 train
tasks of ``juggler_bounce_servo``: the mean episode length and how many ball-paddle impacts the data holds (an
impact: the ball's vertical velocity jumps from falling faster than 0.3 m/s to at least 0.5 m/s higher). Train
tasks only.

Usage: ``python experiments/juggler_diagnosis/diagnostics/random_exploration.py --scales 1 0.5 0.3 0.2``
"""

from __future__ import annotations

import argparse

import numpy as np

from mbmeta.envs import get_family
from mbmeta.envs.juggler import I_BALL_VZ


def impacts(world_obs: np.ndarray) -> int:
    """Ball-paddle impacts in one episode's world-frame observations ``[L + 1, 14]``."""
    vz = world_obs[:, I_BALL_VZ]
    return int(((vz[:-1] < -0.3) & (vz[1:] > vz[:-1] + 0.5)).sum())


def main(argv: list[str] | None = None) -> None:
    """Print, per action scale, the mean episode length and the impacts per episode."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="juggler_bounce_servo")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.3, 0.2])
    p.add_argument("--tasks", type=int, default=32)
    args = p.parse_args(argv)
    family = get_family(args.family)
    tasks = family.sample(np.random.default_rng(7), args.tasks, "train")
    env = family.make_env()
    for scale in args.scales:
        rng = np.random.default_rng(0)
        lengths, counts = [], []
        for i, task in enumerate(tasks):
            obs, _ = env.reset(seed=i, options={"task": task})
            seen = [family.world_obs(obs)]
            while True:
                action = (rng.uniform(-1, 1, env.action_space.shape) * scale).astype(np.float32)
                obs, _, terminated, truncated, _ = env.step(action)
                seen.append(family.world_obs(obs))
                if terminated or truncated:
                    break
            lengths.append(len(seen) - 1)
            counts.append(impacts(np.array(seen)))
        counts = np.array(counts)
        print(
            f"scale {scale}: mean length {np.mean(lengths):.1f} steps, episodes with an impact "
            f"{np.mean(counts > 0):.2f}, impacts per episode {counts.mean():.2f}",
            flush=True,
        )
    env.close()


if __name__ == "__main__":
    main()
