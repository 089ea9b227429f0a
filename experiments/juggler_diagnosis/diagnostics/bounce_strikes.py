"""How often random-action data of the servo bounce arm holds a strike that would reach the target apex.

For each contact step of random episodes (step 6's ``collect`` and ``ballistic_steps``: 25 Hz, world frame), the
ball's upward speed after the step and the apex it then predicts (``predicted_apex``: height + vz² / 2g). Train tasks
only. Usage: ``python experiments/juggler_diagnosis/diagnostics/bounce_strikes.py --episodes 1024 --scales 0.5 1``
"""

from __future__ import annotations

import argparse

import numpy as np
from bounce_representation import ballistic_steps, collect

from mbmeta.envs import get_family
from mbmeta.envs.juggler import predicted_apex


def main(argv: list[str] | None = None) -> None:
    """Print, per action scale, the distribution of post-contact upward speeds and the share of high apexes."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=1024)
    p.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0], help="random actions within this of the box")
    args = p.parse_args(argv)
    family = get_family("juggler_bounce_servo")
    tasks = family.sample(np.random.default_rng(0), args.episodes, "train")
    for scale in args.scales:
        after = np.concatenate([o[1:][~ballistic_steps(o, 0.04)] for o, _ in collect(tasks, scale, 0, 2)])
        vz, apex = after[:, 12], np.asarray(predicted_apex(after))
        print(f"scale {scale}: {len(vz)} contact steps; ball vz after contact: p50 {np.median(vz):.2f}, "
              f"p90 {np.quantile(vz, 0.9):.2f}, p99 {np.quantile(vz, 0.99):.2f}, max {vz.max():.2f} m/s; predicted "
              f"apex >= 1.3 m: {(apex >= 1.3).mean():.2%}, >= 1.5 m: {(apex >= 1.5).mean():.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
