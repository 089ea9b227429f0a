"""Step 9 of the diagnosis: random bounce data with the ball dropped from varied heights, for ``mbmeta fit``.

Step 8 found that the learned model does not rate the strikes that keep the ball bouncing. Those strikes meet a ball
falling from the 1.5 m target apex (about 4 m/s at the paddle), while random episodes, which lose the ball within a
second, meet almost only the reset's ball dropped from 1.0 m (about 2.7 m/s): 2.6 % of their contact steps start
faster than 3.5 m/s. This script records random-action episodes (actions within ``--scale`` of the box, the servo
bounce arm at 25 Hz, train tasks) whose ball starts at rest at a height drawn uniformly from ``--heights``, so the
model sees contacts at the speeds a steady bounce has. Only the data differ from the family's reset (the ball is
placed after the reset; a real robot would drop the ball from a few heights by hand); the model is fitted and
judged exactly as pilot 3's (``mbmeta fit`` with its settings, then ``bounce_closed_loop.py``). Train tasks only.

Usage::

    python experiments/juggler_diagnosis/diagnostics/bounce_drop_heights.py --episodes 10240 --heights 1.0 2.0 \
        --out /tmp/bounce_drops.npz
"""

from __future__ import annotations

import argparse

import numpy as np
from bounce_representation import ballistic_steps

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.envs.juggler import OBS_NAMES

BALL_Z = 4  # qpos index of the ball's height


def drop_episode(
    env, task, rng: np.random.Generator, height: float, scale: float, seed: int, hold: int = 1
) -> dict[str, np.ndarray]:
    """One random-action episode with the ball placed at rest ``height`` m; each random action held ``hold`` steps.

    Returns the fields of :meth:`EpisodeBuffer.add_episode` (``obs``/``next_obs`` ``[L, 14]``, ``action`` ``[L, 3]``,
    ``reward``, ``terminated``, ``truncated`` ``[L]``).
    """
    env.reset(seed=seed, options={"task": task})
    base = env.unwrapped
    qpos, qvel = base.data.qpos.copy(), base.data.qvel.copy()
    qpos[BALL_Z] = height
    qvel[3:6] = 0.0
    base.set_state(qpos, qvel)
    obs = base._get_obs()
    base._obs = obs  # the env's reward reads the previous observation from here
    fields: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminated", "truncated")}
    step = 0
    while True:
        if step % hold == 0:
            action = rng.uniform(-1, 1, 3) * scale
        step += 1
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(fields, (obs, action, reward, next_obs, terminated, truncated), strict=True):
            fields[key].append(value)
        obs = next_obs
        if terminated or truncated:
            return {k: np.array(v) for k, v in fields.items()}


def main(argv: list[str] | None = None) -> None:
    """Record the episodes into an ``EpisodeBuffer`` file and print the contact speeds they hold."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=10240)
    p.add_argument("--heights", type=float, nargs=2, default=[1.0, 2.0], help="m, ball-centre drop height range")
    p.add_argument("--scale", type=float, default=0.5, help="random actions within this fraction of the box")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=None, help="0.02 s steps per action (default: the family's 2, 25 Hz)")
    p.add_argument("--out", required=True, help="the .npz buffer to write")
    args = p.parse_args(argv)
    family = get_family("juggler_bounce_servo")
    rng = np.random.default_rng(args.seed)
    tasks = family.sample(rng, args.episodes, "train")
    env = family.make_env() if args.repeat is None else family.make_env(action_repeat=args.repeat)
    dt = 0.02 * env.unwrapped.action_repeat
    hold = max(1, 2 // env.unwrapped.action_repeat)  # a random action lasts 0.04 s, as at the family's 25 Hz
    names = list(tasks[0])
    buffer = EpisodeBuffer(len(OBS_NAMES), 3, names, family=family.name, capacity=args.episodes)
    speeds = []
    for i, task in enumerate(tasks):
        height = rng.uniform(*args.heights)
        episode = drop_episode(env, task, rng, height, args.scale, args.seed * 1_000_003 + i, hold=hold)
        buffer.add_episode(**episode, task=task)
        contact = ~ballistic_steps(np.concatenate([episode["obs"], episode["next_obs"][-1:]]), dt)
        speeds.append(episode["obs"][contact, 12])
    env.close()
    buffer.save(args.out)
    vz = np.concatenate(speeds)
    print(
        f"{args.episodes} episodes, {sum(len(s) for s in speeds)} contact steps of {buffer.num_transitions} "
        f"transitions; contact steps starting faster than 3.5 / 4.0 m/s downward: {(vz < -3.5).mean():.1%} / "
        f"{(vz < -4.0).mean():.1%}; written to {args.out}"
    )


if __name__ == "__main__":
    main()
