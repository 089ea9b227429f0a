"""Step 6 of the diagnosis: for bouncing, does a learned model drift less with the ball in the world or paddle frame?

The bounce task's ball spends most of its time in free flight while the arm swings: in the world frame its flight
does not depend on the arm, in the paddle frame every arm motion moves it. As step 2 did for balance, one plain
ensemble per representation (``model_representation.fit``: 5 x MLP 200-200-200 on standardised deltas) is fitted on
the same random-action episodes of ``juggler_bounce`` with 1-rad servos at 25 Hz (``juggler_bounce_servo``'s action),
then rolled out open-loop along held-out random episodes on other train tasks; errors are the ball's world position
(m, RMS) at horizons in seconds, apart for windows in free flight (the true ball stays 10 cm above the paddle centre
throughout) and windows with a contact or a near miss. ``--repeat 1`` controls at 50 Hz. Train tasks only.

Usage: ``python experiments/juggler_diagnosis/diagnostics/bounce_representation.py --episodes 256 --scale 0.5``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from model_representation import ball_offset_world, fit, to_repr

from mbmeta.envs import get_family
from mbmeta.envs.juggler import BOUNCE_SERVO_SPAN, I_BALL_Z, I_PADDLE_Z

CLEAR = 0.1  # m: a window is "in flight" when the true ball centre stays this far above the paddle centre throughout


def collect(tasks, scale: float, seed: int, repeat: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random-action episodes ``(obs [T+1, 14] world frame, action [T, 3])`` on the servo bounce arm."""
    family = get_family("juggler_bounce")  # world-frame observations; the servo bounce family's actuation
    rng = np.random.default_rng(seed)
    env = family.make_env(actuation="servo", action_repeat=repeat, servo_span=BOUNCE_SERVO_SPAN)
    out = []
    for i, task in enumerate(tasks):
        obs, _ = env.reset(seed=seed + i, options={"task": task})
        observations, actions = [obs], []
        while True:
            action = rng.uniform(-1, 1, 3) * scale
            obs, _, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            if terminated or truncated:
                break
        out.append((np.array(observations), np.array(actions)))
    env.close()
    return out


def drift_by_contact(step, episodes, kind: str, horizons: list[int]) -> dict[int, dict[str, tuple[float, int]]]:
    """RMS world-position error of the ball (m) and window count at each horizon, for windows in flight / not.

    A window is in flight up to horizon ``h`` when the true ball centre stays :data:`CLEAR` above the paddle centre
    from its start to ``h`` steps later.
    """
    hmax = max(horizons)
    starts = [(o, a, t) for o, a in episodes for t in range(0, len(a) - hmax, 2)]
    clear = [o[t : t + hmax + 1, I_BALL_Z] - o[t : t + hmax + 1, I_PADDLE_Z] > CLEAR for o, _, t in starts]
    state = np.stack([to_repr(o[t], kind) for o, _, t in starts])
    out = {}
    for h in range(1, hmax + 1):
        state = step(state, np.stack([a[t + h - 1] for _, a, t in starts]))
        if h in horizons:
            true = np.stack([to_repr(o[t + h], kind) for o, _, t in starts])
            error = ((ball_offset_world(state, kind)[1] - ball_offset_world(true, kind)[1]) ** 2).sum(-1)
            flight = np.array([c[: h + 1].all() for c in clear])  # in flight from the start to this horizon
            out[h] = {
                name: (float(np.sqrt(error[mask].mean())) if mask.any() else float("nan"), int(mask.sum()))
                for name, mask in (("flight", flight), ("contact", ~flight))
            }
    return out


def integrating(step, dt: float):
    """A world-frame step function whose ball position comes from its velocities (trapezoid), not from the model."""

    def integrated(state: np.ndarray, action: np.ndarray) -> np.ndarray:
        nxt = step(state, action)
        nxt[:, 9:11] = state[:, 9:11] + dt * 0.5 * (state[:, 11:13] + nxt[:, 11:13])
        return nxt

    return integrated


def main(argv: list[str] | None = None) -> None:
    """Print the drift of each representation at 0.04-0.6 s."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--scale", type=float, default=0.5, help="random actions uniform within this of the box")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--repeat", type=int, default=2, help="0.02 s steps per action (2: 25 Hz, the family's rate)")
    p.add_argument(
        "--integrate", action="store_true", help="world frame only: ball x, z from the mean of old and new velocity"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    family = get_family("juggler_bounce_servo")
    data = collect(family.sample(np.random.default_rng(0), args.episodes, "train"), args.scale, 0, args.repeat)
    held = collect(family.sample(np.random.default_rng(1), 64, "train"), args.scale, 10_000, args.repeat)
    step_s = 0.02 * args.repeat
    horizons = sorted({max(1, round(s / step_s)) for s in (0.04, 0.2, 0.4, 0.6)})
    print(
        f"data: {args.episodes} random episodes (scale {args.scale}), mean length "
        f"{np.mean([len(a) for _, a in data]):.1f}; held out: 64, mean length {np.mean([len(a) for _, a in held]):.1f}",
        flush=True,
    )
    for kind in ("world",) if args.integrate else ("world", "paddle"):
        step, n = fit(data, kind, args.epochs, seed=0)
        if args.integrate:
            step = integrating(step, step_s)
        for h, parts in drift_by_contact(step, held, kind, horizons).items():
            text = ", ".join(f"{name} {e * 100:.1f} cm (n = {k})" for name, (e, k) in parts.items())
            print(f"{kind} ({n} transitions), {h * step_s:.2f} s: ball position error {text}", flush=True)


if __name__ == "__main__":
    main()
