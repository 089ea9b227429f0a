"""Step 2 of the diagnosis: how far does a learned model drift on near-balanced motion, by representation and data?

Fits a plain ensemble (5 x MLP 200-200-200, SiLU, MSE on standardised deltas; no context: train tasks only) on
one data set and rolls it out open-loop along held-out near-balanced episodes (the scripted controller with action
noise 0.2 on other train tasks), feeding back its ensemble-mean prediction. Two state representations of the same
episodes:

- ``world``: the environment's observation (ball position and velocity in the world frame);
- ``paddle``: joints, joint rates, and the ball in the paddle frame (along / normal offset from the paddle-surface
  centre, the ball's velocity relative to the paddle point in that frame, spin): see
  ``mbmeta.envs.juggler_geometry.ball_in_paddle_frame``.

Errors are physical, the same for both: the ball's offset from the paddle centre (m) and the ball's world position
(m), RMS over all windows, at horizons given in seconds. ``--repeat r`` subsamples the episodes to every r-th step
(the model then predicts 0.02 r s ahead); the data is collected at 50 Hz with the action held for r steps.

Usage: ``python experiments/juggler_diagnosis/diagnostics/model_representation.py --data scripted --repeat 1``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from mbmeta.envs import get_family
from mbmeta.envs.juggler_geometry import ball_in_paddle_frame, ball_in_world_frame


def servo_beam_law(obs: np.ndarray) -> np.ndarray:
    """A ball-on-beam law for servo actuation (diagnostic data only): the scripted controller's tilt, set by IK."""
    from mbmeta.envs.juggler import BALANCE_TARGET, BALL_RADIUS, SERVO_SPAN, inverse_kinematics

    tx, tz = BALANCE_TARGET
    phi = np.clip(0.9 * (obs[9] - tx) + 0.6 * obs[11], -0.35, 0.35)
    home = inverse_kinematics(tx, tz - BALL_RADIUS, 0.0)
    return np.clip((inverse_kinematics(tx, tz - BALL_RADIUS, phi) - home) / SERVO_SPAN, -1, 1)


def collect(
    family,
    tasks,
    policy: str,
    noise: float,
    repeat: int,
    seed: int,
    actuation: str = "torque",
    random_scale: float = 1.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Episodes ``(obs [T+1, 14], action [T, 3])`` at 50 Hz / repeat (actions held for ``repeat`` steps)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, task in enumerate(tasks):
        env = family.make_env(actuation=actuation)
        obs, _ = env.reset(seed=seed + i, options={"task": task})
        controller = family.make_controller()
        level = rng.uniform(0, noise)
        observations, actions, done = [obs], [], False
        while not done:
            if policy == "random":
                action = rng.uniform(-1, 1, 3) * random_scale
            else:
                base = controller.act(obs) if actuation == "torque" else servo_beam_law(obs)
                action = np.clip(base + level * rng.standard_normal(3), -1, 1)
            for _ in range(repeat):
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
                if done:
                    break
            observations.append(obs)
            actions.append(action)
        env.close()
        out.append((np.array(observations), np.array(actions)))
    return out


def to_repr(obs: np.ndarray, kind: str) -> np.ndarray:
    """``[..., 14]`` observation -> state ``[..., S]`` of the representation."""
    if kind == "world":
        return obs
    return np.concatenate([obs[..., :6], ball_in_paddle_frame(obs)], -1)


def ball_offset_world(state: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(ball centre minus paddle centre [..., 2], ball centre [..., 2]) in the world frame, from a state."""
    from mbmeta.envs.juggler_geometry import paddle_pose

    pose = paddle_pose(state[..., :3])
    if kind == "world":
        ball = state[..., 9:11]
    else:
        ball = ball_in_world_frame(state[..., :6], state[..., 6:])[..., :2]
    return ball - pose[..., :2], ball


class Ensemble(nn.Module):
    """E independent MLPs as batched matmuls: ``[E, N, I] -> [E, N, O]``."""

    def __init__(self, e: int, i: int, o: int, hidden: int = 200, layers: int = 3) -> None:
        super().__init__()
        sizes = [i] + [hidden] * layers + [o]
        self.w = nn.ParameterList(
            [nn.Parameter(torch.randn(e, a, b) * (1.0 / a) ** 0.5) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(e, 1, b)) for b in sizes[1:]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[E, N, I] -> [E, N, O]``."""
        for k, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            x = x @ w + b
            if k < len(self.w) - 1:
                x = nn.functional.silu(x)
        return x


def fit(episodes, kind: str, epochs: int, seed: int):
    """Fit on (state, action) -> delta state; returns a step function ``state [N, S], action [N, A] -> state``."""
    torch.manual_seed(seed)
    s = np.concatenate([to_repr(o[:-1], kind) for o, _ in episodes])
    s2 = np.concatenate([to_repr(o[1:], kind) for o, _ in episodes])
    a = np.concatenate([act for _, act in episodes])
    x = np.concatenate([s, a], 1)
    d = s2 - s
    xm, xs = x.mean(0), x.std(0) + 1e-6
    dm, ds = d.mean(0), d.std(0) + 1e-6
    X = torch.as_tensor((x - xm) / xs, dtype=torch.float32)
    Y = torch.as_tensor((d - dm) / ds, dtype=torch.float32)
    net = Ensemble(5, X.shape[1], Y.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    n = len(X)
    for _ in range(epochs):
        idx = torch.stack([torch.randperm(n) for _ in range(5)])  # each member its own order
        for start in range(0, n, 256):
            b = idx[:, start : start + 256]
            loss = (net(X[b]) - Y[b]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def step(state: np.ndarray, action: np.ndarray) -> np.ndarray:
        inp = torch.as_tensor((np.concatenate([state, action], -1) - xm) / xs, dtype=torch.float32)
        with torch.no_grad():
            out = net(inp.expand(5, -1, -1)).mean(0).numpy()
        return state + out * ds + dm

    return step, len(X)


def drift(step, episodes, kind: str, horizons: list[int]) -> dict[int, tuple[float, float]]:
    """RMS errors (ball offset from the paddle centre, ball world position), in m, at each horizon (in steps)."""
    out = {}
    hmax = max(horizons)
    starts = [(o, a, t) for o, a in episodes for t in range(0, len(a) - hmax, 2)]
    state = np.stack([to_repr(o[t], kind) for o, _, t in starts])
    for h in range(1, hmax + 1):
        action = np.stack([a[t + h - 1] for _, a, t in starts])
        state = step(state, action)
        if h in horizons:
            true = np.stack([to_repr(o[t + h], kind) for o, _, t in starts])
            (po, pb), (to, tb) = ball_offset_world(state, kind), ball_offset_world(true, kind)
            out[h] = (float(np.sqrt(((po - to) ** 2).sum(-1).mean())), float(np.sqrt(((pb - tb) ** 2).sum(-1).mean())))
    return out


def main(argv: list[str] | None = None) -> None:
    """Print drift per representation for one data set and control rate."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["scripted", "random"], default="scripted")
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--random-scale", type=float, default=1.0, help="random actions uniform in +-scale")
    p.add_argument("--actuation", default="torque", choices=["torque", "servo"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    family = get_family("juggler_balance")
    train_tasks = family.sample(np.random.default_rng(0), args.episodes, "train")
    held_tasks = family.sample(np.random.default_rng(1), 8, "train")
    data = collect(
        family,
        train_tasks,
        args.data,
        0.5,
        args.repeat,
        seed=0,
        actuation=args.actuation,
        random_scale=args.random_scale,
    )
    held = collect(family, held_tasks, "scripted", 0.2, args.repeat, seed=1000, actuation=args.actuation)
    seconds = [0.04, 0.1, 0.3, 0.6]
    horizons = sorted({max(1, round(s / (0.02 * args.repeat))) for s in seconds})
    lengths = [len(a) for _, a in held]
    print(f"train data mean length {np.mean([len(a) for _, a in data]):.1f} steps", flush=True)
    print(
        f"{args.actuation}: data {args.data} x{args.episodes}, repeat {args.repeat}: held-out lengths {lengths}",
        flush=True,
    )
    for kind in ("world", "paddle"):
        step, n = fit(data, kind, args.epochs, seed=0)
        res = drift(step, held, kind, horizons)
        text = ", ".join(f"{h * 0.02 * args.repeat:.2f}s: {o * 100:.1f}/{b * 100:.1f}" for h, (o, b) in res.items())
        print(f"  {kind:6s} ({n} transitions) cm offset/world: {text}", flush=True)


if __name__ == "__main__":
    main()
