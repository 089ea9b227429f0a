"""Validation tasks: does a gain on the network's arm response fit motors weaker or stronger than trained?

Loads a trained ``juggler_bounce_servo`` model told the ball's physics, records random-action episodes (half the
action box, as the runs' initial data) on the nominal ball with each ``--gears`` motor strength, and prints the
network's one-step joint error there as trained and with the gain :class:`AdaptiveArmBallContact` fits to the
episodes' own transitions (one gain per strength; the angle error in centiradians, the rate error in rad/s).
Usage: ``python experiments/juggler_diagnosis/diagnostics/arm_gain.py --checkpoint
experiments/juggler_bounce_comparison/runs/physics-seed0/model.ckpt``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from hybrid_fit import unadapted

from mbmeta.envs.juggler_contact import AdaptiveArmBallContact
from mbmeta.envs.registry import get_family
from mbmeta.types import Transition

FAMILY = "juggler_bounce_servo"


def record(gear: float, episodes: int, seed: int) -> Transition:
    """``[1, N, ...]`` transitions of random-action episodes (half the box) on the nominal ball at ``gear``."""
    family = get_family(FAMILY)
    task = family.validate({**family.nominal(), "gear_scale": gear})
    env, rng, rows = family.make_env(), np.random.default_rng(seed), []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed * 1000 + i, options={"task": task})
            for _ in range(family.episode_steps):
                action = rng.uniform(-0.5, 0.5, 3).astype(np.float32)
                next_obs, _, terminated, truncated, _ = env.step(action)
                rows.append((obs, action, next_obs))
                obs = next_obs
                if terminated or truncated:
                    break
    finally:
        env.close()
    o, a, n = (torch.tensor(np.array(column), dtype=torch.float32)[None] for column in zip(*rows, strict=True))
    return Transition(o, a, n, torch.zeros(o.shape[:2]), torch.zeros(o.shape[:2], dtype=torch.bool))


def joint_errors(joints: torch.Tensor, true: torch.Tensor) -> str:
    """RMS angle (centiradians) and rate (rad/s) error per joint of ``joints`` vs ``true`` ``[N, 6]``, as text."""
    rms = (joints - true).square().mean(0).sqrt()
    return f"angles {np.round((rms[0:3] * 100).tolist(), 2)} crad, rates {np.round(rms[3:6].tolist(), 2)} rad/s"


def arguments(description: str, checkpoint: str, argv: list[str] | None) -> argparse.Namespace:
    """The options of this script and of ``servo_arm.py`` (which records the same episodes): checkpoint, gears, ..."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--checkpoint", required=True, help=checkpoint)
    p.add_argument("--gears", default="0.7,1.0,1.35", help="motor strengths (gear_scale), comma-separated")
    p.add_argument("--episodes", type=int, default=6, help="random-action episodes per strength")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Print, per motor strength, the network's one-step joint error as trained and with the fitted gain."""
    args = arguments(__doc__.splitlines()[0], "a model trained with --model.known_physics (BallContact)", argv)
    torch.set_num_threads(1)
    adapted = unadapted(args.checkpoint)
    if adapted.model.physics is None:
        raise SystemExit(f"--checkpoint: a model told the ball's physics is needed, got {args.checkpoint!r}")
    arm = AdaptiveArmBallContact()
    for gear in (float(g) for g in args.gears.split(",")):
        context = record(gear, args.episodes, args.seed)
        with torch.no_grad():
            network = adapted.network_mean(context.obs, context.action)  # [1, N, 14]
            gain = arm.adapt(context, None, predict=adapted.network_mean)[0, 1].exp()
            scaled = arm.arm(context.obs, network[..., 0:6], gain)
        true = context.next_obs[0, :, 0:6]
        print(f"gear {gear:g} ({context.obs.shape[1]} steps): as trained {joint_errors(network[0, :, 0:6], true)}")
        print(f"  fitted gain {float(gain):.2f}: {joint_errors(scaled[0], true)}")


if __name__ == "__main__":
    main()
