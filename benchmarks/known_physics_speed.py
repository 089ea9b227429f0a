"""Speed of the juggler's known physics on CPU: one ``complete`` call at planner size, and one ``adapt`` call.

The bounce planner (iCEM 64 candidates, ``expectation``) asks the model for one step of ``B × 64`` rows per planning
iteration and horizon step; a known physics computes part or all of each row (``mbmeta/envs/juggler_contact.py``,
``mbmeta/envs/juggler_arm.py``). This prints, per physics, the CPU milliseconds of one ``complete`` on such a batch
(states taken from random-action episodes of ``juggler_bounce_servo`` with the joints moved one step by MuJoCo, so
a realistic share of rows is near the paddle) and of one ``adapt`` on a context of B × 30 steps, with the physics'
generic starting constants. CPU time of this process (``time.process_time``), the minimum over ``--rounds``.

Usage: ``python benchmarks/known_physics_speed.py [--envs 16] [--candidates 64] [--rounds 5] [--threads 1]``. To
compare two checkouts, run it under each (``PYTHONPATH=<checkout>``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import mbmeta.envs
from mbmeta.imports import import_object
from mbmeta.types import Transition

PHYSICS = (
    "mbmeta.envs.juggler_contact:BallContact",
    "mbmeta.envs.juggler_contact:AdaptiveBallContact",
    "mbmeta.envs.juggler_arm:ServoArmBallContact",
    "mbmeta.envs.juggler_arm:ServoArmBallPush",
)


def transitions(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``obs, action, next_obs`` ``[count, ...]`` of random-action episodes (half the box) on train tasks."""
    family = mbmeta.envs.get_family("juggler_bounce_servo")
    rng, env, rows = np.random.default_rng(seed), family.make_env(), []
    try:
        while len(rows) < count:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)), options={"task": family.sample(rng, 1, "train")[0]})
            for _ in range(family.episode_steps):
                action = rng.uniform(-0.5, 0.5, 3).astype(np.float32)
                next_obs, _, terminated, truncated, _ = env.step(action)
                rows.append((obs, action, next_obs))
                obs = next_obs
                if terminated or truncated or len(rows) == count:
                    break
    finally:
        env.close()
    return tuple(torch.tensor(np.array(column), dtype=torch.float32) for column in zip(*rows, strict=True))


def cpu_ms(fn, rounds: int) -> float:
    """Minimum CPU milliseconds of ``fn()`` over ``rounds`` calls (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return 1000.0 * best


def main(argv: list[str] | None = None) -> None:
    """Print the table: physics, ms per ``complete`` (B × candidates rows), ms per ``adapt`` (B × 30 context)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=16, help="B, environments planned for at once")
    p.add_argument("--candidates", type=int, default=64, help="rows per environment in one model call")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    b, n, k = args.envs, args.candidates, 30
    obs, action, next_obs = transitions(b * n + b * k, args.seed)
    plan_obs, plan_action = obs[: b * n].view(1, b, n, 14), action[: b * n].view(1, b, n, 3)
    plan_next = next_obs[: b * n].view(1, b, n, 14)
    rest = slice(b * n, b * n + b * k)
    context = Transition(
        obs[rest].view(b, k, 14),
        action[rest].view(b, k, 3),
        next_obs[rest].view(b, k, 14),
        torch.zeros(b, k),
        torch.zeros(b, k, dtype=torch.bool),
    )
    print(f"juggler known physics, CPU ms ({args.threads} thread(s)), B = {b}, {n} rows each, context {k}")
    print(f"{'physics':<48} {'complete':>10} {'adapt':>10}")
    for path in PHYSICS:
        try:
            physics = import_object(path, "physics")()
        except (ImportError, ValueError, AttributeError):
            print(f"{path:<48} {'(not in this checkout)':>21}")
            continue
        uses_action = getattr(physics, "uses_action", False)
        with torch.no_grad():
            state = physics.adapt(context, None) if getattr(physics, "adapts", False) else None
            extra = {"action": plan_action} if uses_action else {}
            complete = cpu_ms(lambda: physics.complete(plan_obs, plan_next, state, **extra), args.rounds)  # noqa: B023
            adapt = (
                cpu_ms(lambda: physics.adapt(context, None), args.rounds)  # noqa: B023
                if getattr(physics, "adapts", False) and not getattr(physics, "adapts_with_prediction", False)
                else float("nan")
            )
        print(f"{path:<48} {complete:>10.1f} {adapt:>10.1f}")


if __name__ == "__main__":
    main()
