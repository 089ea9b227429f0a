"""Step 6 of the diagnosis: for bouncing, does a learned model drift less with the ball in the world or paddle frame?

The bounce task's ball spends most of its time in free flight while the arm swings: in the world frame its flight
does not depend on the arm, in the paddle frame every arm motion moves it. As step 2 did for balance, one plain
ensemble per representation (``model_representation.fit``: 5 x MLP 200-200-200 on standardised deltas) is fitted on
the same random-action episodes of ``juggler_bounce`` with 1-rad servos at 25 Hz (``juggler_bounce_servo``'s action),
then rolled out open-loop along held-out random episodes on other train tasks; errors are the ball's world position
(m, RMS) at horizons in seconds, apart for windows in free flight (every true step ballistic: the ball's velocity
changed by (0, −g·dt)) and windows with a contact. ``--repeat 1`` controls at 50 Hz. Train tasks only.

Usage: ``python experiments/juggler_diagnosis/diagnostics/bounce_representation.py --episodes 256 --scale 0.5``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from model_representation import ball_offset_world, fit, to_repr

from mbmeta.envs import get_family
from mbmeta.envs.juggler import BOUNCE_SERVO_SPAN, GRAVITY

FLIGHT_TOLERANCE = 0.02  # m/s: a step is ballistic when the ball's velocity change is (0, -g dt) within this


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


def ballistic_steps(obs: np.ndarray, dt: float) -> np.ndarray:
    """``[T]`` bool per transition of an episode's world-frame ``obs [T+1, 14]``: the ball moved in free flight.

    In free flight (no contact during the step) the ball's velocity changes by exactly ``(0, −g·dt)``; a contact,
    even a grazing one with the paddle's edge, changes it otherwise.
    """
    dv = np.diff(obs[:, 11:13], axis=0)
    return (np.abs(dv[:, 0]) < FLIGHT_TOLERANCE) & (np.abs(dv[:, 1] + GRAVITY * dt) < FLIGHT_TOLERANCE)


def drift_by_contact(
    step, episodes, kind: str, horizons: list[int], dt: float
) -> dict[int, dict[str, tuple[float, int]]]:
    """RMS world-position error of the ball (m) and window count at each horizon, for windows in flight / not.

    A window is in flight up to horizon ``h`` when every one of its first ``h`` true transitions is ballistic
    (:func:`ballistic_steps`).
    """
    hmax = max(horizons)
    starts = [(o, a, t) for o, a in episodes for t in range(0, len(a) - hmax, 2)]
    flights = {id(o): ballistic_steps(o, dt) for o, _ in episodes}
    state = np.stack([to_repr(o[t], kind) for o, _, t in starts])
    out = {}
    for h in range(1, hmax + 1):
        state = step(state, np.stack([a[t + h - 1] for _, a, t in starts]))
        if h in horizons:
            true = np.stack([to_repr(o[t + h], kind) for o, _, t in starts])
            error = ((ball_offset_world(state, kind)[1] - ball_offset_world(true, kind)[1]) ** 2).sum(-1)
            flight = np.array([flights[id(o)][t : t + h].all() for o, _, t in starts])
            out[h] = {
                name: (float(np.sqrt(error[mask].mean())) if mask.any() else float("nan"), int(mask.sum()))
                for name, mask in (("flight", flight), ("contact", ~flight))
            }
    return out


def free_flight(obs: np.ndarray, dt: float) -> np.ndarray:
    """``[N, 14]`` world-frame observations after ``dt`` of free flight: the ball ballistic, the rest unchanged."""
    out = obs.copy()
    out[:, 9] += obs[:, 11] * dt
    out[:, 10] += obs[:, 12] * dt - 0.5 * GRAVITY * dt**2
    out[:, 12] -= GRAVITY * dt
    return out


def with_free_flight(learned, dt: float):
    """A step function: free flight plus the learned residual (``learned`` was fitted on ``next − flight + obs``)."""

    def step(state: np.ndarray, action: np.ndarray) -> np.ndarray:
        return learned(state, action) - state + free_flight(state, dt)

    return step


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
    p.add_argument(
        "--ballistic", action="store_true", help="world frame only: the model learns the residual to free flight"
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
    for kind in ("world",) if args.integrate or args.ballistic else ("world", "paddle"):
        if args.ballistic:
            # one two-step "episode" per transition: input o[t], target delta o[t+1] - flight(o[t])
            residual = [
                (np.stack([o[t], o[t + 1] - flight[t] + o[t]]), a[t : t + 1])
                for o, a in data
                for flight in [free_flight(o[:-1], step_s)]
                for t in range(len(a))
            ]
            learned, n = fit(residual, kind, args.epochs, seed=0)
            step = with_free_flight(learned, step_s)
        else:
            step, n = fit(data, kind, args.epochs, seed=0)
        if args.integrate:
            step = integrating(step, step_s)
        for h, parts in drift_by_contact(step, held, kind, horizons, step_s).items():
            text = ", ".join(f"{name} {e * 100:.1f} cm (n = {k})" for name, (e, k) in parts.items())
            print(f"{kind} ({n} transitions), {h * step_s:.2f} s: ball position error {text}", flush=True)


if __name__ == "__main__":
    main()
