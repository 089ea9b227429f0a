"""Why bounce episodes end beside the paddle: the ball's lateral speed after strikes, and the model's error in it.

Reads a finished ``juggler_bounce_servo`` run (its ``buffer.npz`` and a checkpoint), train tasks only. For every
MPC episode: each flight (a run of free-flight steps after a contact) with the ball's lateral speed as it leaves the
paddle, its duration and where it comes down relative to the paddle centre; how the episode ended. Then the model's
one-step error at the contact steps of those episodes, per ball component, and the lateral landing error it implies
over a flight. Usage: ``python experiments/juggler_diagnosis/diagnostics/bounce_lateral.py --run
experiments/juggler_bounce_comparison/runs/physics-seed0``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from hybrid_fit import unadapted

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs.juggler import I_BALL_VX, I_BALL_X, I_PADDLE_X, PADDLE_HALF_LENGTH
from mbmeta.envs.juggler_contact import BallContact, contact_transitions

STEP = BallContact.dt  # s per environment step (25 Hz)


def flights(obs: np.ndarray, nxt: np.ndarray, contact: np.ndarray) -> list[dict[str, float]]:
    """The flights of one episode ``obs, next_obs [T, 14]``: lateral speed leaving, steps, landing offset (m).

    ``contact [T]`` marks its contact steps (:func:`contact_transitions`). A flight starts at the first free-flight
    step after a contact step and ends at the next contact step (its landing offset: ball x − paddle x there) or at
    the episode's end (offset at the last step, ``landed`` False).
    """
    out, start = [], None
    for t in range(len(obs)):
        if not contact[t] and start is None and t > 0 and contact[t - 1]:
            start = t
        elif contact[t] and start is not None:
            out.append(_flight(obs, start, t, landed=True))
            start = None
    if start is not None:
        out.append(_flight(nxt, start, len(obs) - 1, landed=False))
    return out


def _flight(states: np.ndarray, start: int, end: int, landed: bool) -> dict[str, float]:
    return {
        "vx": float(states[start, I_BALL_VX]),
        "steps": end - start,
        "offset": float(states[end, I_BALL_X] - states[end, I_PADDLE_X]),
        "landed": landed,
    }


def one_step_errors(adapted, obs: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor) -> dict[str, float]:
    """RMS error of the ensemble-mean prediction ``[N, 14]`` in ball x, z (cm), vx, vz (m/s) and spin (rad/s)."""
    members = adapted.ensemble_size
    with torch.no_grad():
        pred = adapted(obs.expand(members, 1, *obs.shape), action.expand(members, 1, *action.shape)).mean
    error = pred.mean(0)[0] - nxt
    rms = error.pow(2).mean(0).sqrt()
    return {
        "ball x (cm)": float(rms[9] * 100),
        "ball z (cm)": float(rms[10] * 100),
        "vx (m/s)": float(rms[11]),
        "vz (m/s)": float(rms[12]),
        "spin (rad/s)": float(rms[13]),
        "vx bias (m/s)": float(error[:, 11].mean()),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the flight statistics of the run's MPC episodes and the model's one-step errors at their contacts."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a juggler_bounce_servo run directory (buffer.npz, checkpoints/)")
    p.add_argument("--random_episodes", type=int, default=1024, help="the run's initial random episodes (skipped)")
    p.add_argument("--checkpoint", default=None, help="the model to test (default: the run's model.ckpt)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    run = Path(args.run)
    buffer = EpisodeBuffer.load(run / "buffer.npz")
    starts = np.concatenate([[0], np.cumsum(buffer.episode_lengths)])
    first = starts[args.random_episodes]
    obs = torch.tensor(buffer.obs[first:], dtype=torch.float32)
    nxt = torch.tensor(buffer.next_obs[first:], dtype=torch.float32)
    action = torch.tensor(buffer.action[first:], dtype=torch.float32)
    keep = contact_transitions(obs, nxt, STEP)
    episodes = range(args.random_episodes, buffer.num_episodes)
    all_flights, ends = [], []
    for e in episodes:
        rows = slice(starts[e] - first, starts[e + 1] - first)
        o, n = obs[rows].numpy(), nxt[rows].numpy()
        all_flights += flights(o, n, keep[rows].numpy())
        ends.append((len(o), n[-1, I_BALL_X] - n[-1, I_PADDLE_X]))
    landed = [f for f in all_flights if f["landed"]]
    vx = np.array([f["vx"] for f in all_flights])
    t = np.array([f["steps"] for f in landed]) * STEP
    off = np.array([f["offset"] for f in landed])
    print(f"{len(episodes)} MPC episodes, {len(all_flights)} flights ({len(landed)} landed on the paddle)")
    print(
        f"lateral speed leaving the paddle: rms {np.sqrt((vx**2).mean()):.3f} m/s, median |vx| "
        f"{np.median(np.abs(vx)):.3f}, p90 {np.quantile(np.abs(vx), 0.9):.3f}"
    )
    if len(landed):
        print(
            f"flight time (landed): median {np.median(t):.2f} s, p90 {np.quantile(t, 0.9):.2f} s; landing offset "
            f"|ball x - paddle x|: median {np.median(np.abs(off)):.3f} m, p90 {np.quantile(np.abs(off), 0.9):.3f}"
        )
    lengths, end_dx = (np.array(v) for v in zip(*ends, strict=True))
    cut = lengths < lengths.max()
    beside = np.abs(end_dx) > PADDLE_HALF_LENGTH
    print(
        f"episodes ended before the time limit: {int(cut.sum())} of {len(lengths)}; of those, ball beyond the "
        f"paddle's half-length ({PADDLE_HALF_LENGTH} m) laterally: {int((beside & cut).sum())}"
    )
    print("last lateral offsets of the ended episodes (m):", [round(float(v), 2) for v in end_dx[cut]])
    median_flight = float(np.median(t)) if len(landed) else 0.9
    print(
        f"lateral speed error that moves a {median_flight:.2f} s flight's landing by the paddle half-length: "
        f"{PADDLE_HALF_LENGTH / median_flight:.3f} m/s"
    )
    checkpoint = args.checkpoint or str(run / "model.ckpt")
    adapted = unadapted(checkpoint)
    errors = one_step_errors(adapted, obs[keep], action[keep], nxt[keep])
    print(f"model {checkpoint}, one-step error at the {int(keep.sum())} contact steps of these episodes (rms):")
    print("  " + ", ".join(f"{k} {v:.3f}" for k, v in errors.items()))
    free = ~keep
    errors_free = one_step_errors(adapted, obs[free], action[free], nxt[free])
    print(f"  and at the {int(free.sum())} other steps: " + ", ".join(f"{k} {v:.3f}" for k, v in errors_free.items()))


if __name__ == "__main__":
    main()
