"""Step 7 of the diagnosis: what limits a learned bounce model through contacts, inputs, the task, physics or data?

Step 6 found the learned model drifting 45 cm through a contact after 0.6 s. Each variant here fits one plain
ensemble (5 x MLP 200-200-200 on standardised deltas, as ``model_representation.fit``) on the same random-action
episodes of the servo bounce arm (25 Hz, world frame, half the box) and rolls it out open-loop along 64 held-out
episodes (step 6's ``drift_by_contact``), and prints the one-step error of the ball's velocity on contact steps
(train and held out). Variants (``--variants``):

- ``plain``: step 6's world-frame model;
- ``paddle``: inputs also hold the ball relative to the paddle, in the paddle's axes (``ball_in_paddle_frame``);
- ``ttc``: ``paddle`` plus the time until the ball reaches the paddle at its current relative normal speed;
- ``oracle``: inputs also hold the true task parameters (is the contact error the unknown ball?);
- ``prior``: the model learns the residual to an analytic step (:func:`analytic_step`: joints at constant
  velocity, the ball ballistic with one frictionless reflection off the moving paddle, restitution 0.5);
- ``gated``: a classifier says whether the ball touches the paddle within the step; if not, the ball moves
  ballistically (exact), if so, a second ensemble fitted on contact steps only predicts it; the arm from the plain
  ensemble. ``--contact_epochs`` for the contact ensemble.

Train tasks only. Usage: ``python experiments/juggler_diagnosis/diagnostics/bounce_contact.py --episodes 1024
--variants plain paddle``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bounce_representation import ballistic_steps, collect, drift_by_contact, free_flight
from model_representation import Ensemble

from mbmeta.envs import get_family
from mbmeta.envs.juggler_geometry import (
    BALL_RADIUS,
    GRAVITY,
    PADDLE_HALF_LENGTH,
    ball_in_paddle_frame,
    paddle_kinematics,
    paddle_pose,
)

DT = 0.04  # s per step: 25 Hz, the family's rate
VARIANTS = ("plain", "paddle", "ttc", "oracle", "prior", "gated")
HORIZONS = [1, 5, 10, 15]  # steps: 0.04, 0.2, 0.4, 0.6 s


def analytic_step(obs: np.ndarray, dt: float = DT, restitution: float = 0.5) -> np.ndarray:
    """World-frame ``obs [N, 14]`` after ``dt``: joints at constant velocity, the ball ballistic, reflected once.

    The ball is reflected (normal relative speed times −``restitution``, tangential kept) at the first time within
    ``dt`` its centre comes within a radius of the paddle line moving at the step's initial velocity and angular
    rate, if that point lies on the paddle.
    """
    obs = np.asarray(obs, dtype=np.float64)
    out = obs.copy()
    q, qd = obs[:, 0:3], obs[:, 3:6]
    out[:, 0:3] = q + qd * dt
    out[:, 6:9] = paddle_pose(out[:, 0:3])
    px, pz, phi, pvx, pvz, w = paddle_kinematics(q, qd).T
    bx, bz, bvx, bvz = obs[:, 9], obs[:, 10], obs[:, 11], obs[:, 12]
    c, s = np.cos(phi), np.sin(phi)
    n0 = -(bx - px) * s + (bz - pz) * c
    vn = -(bvx - pvx) * s + (bvz - pvz) * c
    # n(t) = n0 + vn t − ½ g cos φ t²: the earliest t in [0, dt] with n = radius
    a, b, gap = -0.5 * GRAVITY * c, vn, n0 - BALL_RADIUS
    t = np.full(len(obs), np.inf)
    touching = (gap <= 0) & (vn < 0)
    t[touching] = 0.0
    disc = b * b - 4 * a * gap
    ok = ~touching & (gap > 0) & (disc >= 0) & (np.abs(a) > 1e-9)
    root = np.sqrt(np.where(ok, disc, 0.0))
    for r in ((-b - root) / np.where(ok, 2 * a, 1.0), (-b + root) / np.where(ok, 2 * a, 1.0)):
        t = np.where(ok & (r >= 0) & (r <= dt) & (r < t), r, t)
    hit = np.isfinite(t)
    tt = np.where(hit, t, dt)
    bx1, bz1, bvz1 = bx + bvx * tt, bz + bvz * tt - 0.5 * GRAVITY * tt**2, bvz - GRAVITY * tt
    phi1 = phi + w * tt
    c1, s1 = np.cos(phi1), np.sin(phi1)
    along = (bx1 - px - pvx * tt) * c1 + (bz1 - pz - pvz * tt) * s1
    hit &= np.abs(along) <= PADDLE_HALF_LENGTH + BALL_RADIUS
    ux, uz = pvx - w * along * s1, pvz + w * along * c1  # the paddle point under the ball
    rt = (bvx - ux) * c1 + (bvz1 - uz) * s1
    rn = -(bvx - ux) * s1 + (bvz1 - uz) * c1
    rn = np.where(rn < 0, -restitution * rn, rn)
    nvx, nvz = ux + rt * c1 - rn * s1, uz + rt * s1 + rn * c1
    rest = dt - tt
    out[:, 9] = np.where(hit, bx1 + nvx * rest, bx + bvx * dt)
    out[:, 10] = np.where(hit, bz1 + nvz * rest - 0.5 * GRAVITY * rest**2, bz + bvz * dt - 0.5 * GRAVITY * dt**2)
    out[:, 11] = np.where(hit, nvx, bvx)
    out[:, 12] = np.where(hit, nvz - GRAVITY * rest, bvz - GRAVITY * dt)
    return out


def inputs(state: np.ndarray, variant: str, task: np.ndarray | None) -> np.ndarray:
    """The model's input features of ``state [N, 14]`` (before the action) for a variant."""
    if variant == "oracle":
        return np.concatenate([state, task], -1)
    if variant in ("plain", "prior"):
        return state
    paddle = ball_in_paddle_frame(state)[..., :4]  # s, n, v_s, v_n
    parts = [state, paddle]
    if variant == "ttc":
        gap, vn = paddle[..., 1:2] - BALL_RADIUS, paddle[..., 3:4]
        parts.append(np.clip(gap / np.maximum(-vn, 1e-2), -1, 1))
    return np.concatenate(parts, -1)


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, loss_fn, seed: int = 0) -> Ensemble:
    """Five members on ``x [N, I] -> y [N, O]``, each its own sample order, Adam 1e-3, batch 256."""
    torch.manual_seed(seed)
    net = Ensemble(5, x.shape[1], y.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    for _ in range(epochs):
        order = torch.stack([torch.randperm(len(x)) for _ in range(5)])
        for start in range(0, len(x), 256):
            batch = order[:, start : start + 256]
            loss = loss_fn(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every member, row and output."""
    return (prediction - target).square().mean()


class Standardised:
    """A net on standardised inputs and outputs: ``predict(x [N, I]) -> [N, O]`` (ensemble mean).

    ``like``: another :class:`Standardised` whose input scaling to use.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, epochs: int, loss_fn=mse, scale_y: bool = True, like=None) -> None:
        self.xm, self.xs = (x.mean(0), x.std(0) + 1e-6) if like is None else (like.xm, like.xs)
        self.ym, self.ys = (y.mean(0), y.std(0) + 1e-6) if scale_y else (0.0, 1.0)
        self.net = train(self.tensor(x), torch.as_tensor((y - self.ym) / self.ys, dtype=torch.float32), epochs, loss_fn)

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        """Standardised inputs ``[N, I]``."""
        return torch.as_tensor((x - self.xm) / self.xs, dtype=torch.float32)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's mean output ``[N, O]`` in standardised units."""
        with torch.no_grad():
            return torch.cat([self.net(self.tensor(x[i : i + 4096]).expand(5, -1, -1)).mean(0) for i in
                              range(0, len(x), 4096)]).numpy()  # fmt: skip

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's mean output ``[N, O]`` in the target's units."""
        return self.raw(x) * self.ys + self.ym


def transitions(episodes, tasks: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Stacked ``s, a, s2 [N, ...]``, each transition's task ``[N, P]`` and whether it held a contact ``[N]``."""
    return {
        "s": np.concatenate([o[:-1] for o, _ in episodes]),
        "a": np.concatenate([a for _, a in episodes]),
        "s2": np.concatenate([o[1:] for o, _ in episodes]),
        "task": np.concatenate([np.repeat(t[None], len(a), 0) for (_, a), t in zip(episodes, tasks, strict=True)]),
        "contact": ~np.concatenate([ballistic_steps(o, DT) for o, _ in episodes]),
    }


def fit(variant: str, data: dict[str, np.ndarray], epochs: int, contact_epochs: int):
    """A step function ``(state [N, 14], action [N, 3], task [N, P]) -> state`` of the variant."""
    s, a, s2, contact = data["s"], data["a"], data["s2"], data["contact"]
    base = analytic_step if variant == "prior" else (lambda z: z)
    kind = "paddle" if variant == "gated" else variant
    x = np.concatenate([inputs(s, kind, data["task"]), a], 1)
    body = Standardised(x, s2 - base(s), epochs)
    if variant != "gated":
        return lambda st, ac, tk: base(st) + body.predict(np.concatenate([inputs(st, kind, tk), ac], -1))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    gate = Standardised(x, contact[:, None].astype(np.float32), epochs, bce, scale_y=False)
    ball = Standardised(x[contact], (s2 - s)[contact][:, 9:14], contact_epochs, like=body)  # inputs scaled as body's

    def step(st: np.ndarray, ac: np.ndarray, tk: np.ndarray) -> np.ndarray:
        xi = np.concatenate([inputs(st, kind, tk), ac], -1)
        out = st + body.predict(xi)
        hit = gate.raw(xi)[:, 0] > 0.0  # logit > 0: contact
        out[:, 9:14] = np.where(hit[:, None], st[:, 9:14] + ball.predict(xi), free_flight(st, DT)[:, 9:14])
        return out

    return step


def velocity_error(step, data: dict[str, np.ndarray]) -> np.ndarray:
    """``[N]`` error (m/s) of the ball's velocity after one step."""
    predicted = step(data["s"], data["a"], data["task"])
    return np.sqrt(((predicted - data["s2"])[:, 11:13] ** 2).sum(-1))


def main(argv: list[str] | None = None) -> None:
    """Print each variant's one-step contact velocity error and open-loop drift at 0.04-0.6 s."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--contact_epochs", type=int, default=400, help="gated: epochs of the contact-only ensemble")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=["plain"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    family = get_family("juggler_bounce_servo")
    train_tasks = family.sample(np.random.default_rng(0), args.episodes, "train")
    held_tasks = family.sample(np.random.default_rng(1), 64, "train")
    vector = lambda t: np.array([t[k] for k in sorted(t)])  # noqa: E731
    episodes = collect(train_tasks, 0.5, 0, 2)
    held = collect(held_tasks, 0.5, 10_000, 2)
    data = transitions(episodes, [vector(t) for t in train_tasks])
    held_data = transitions(held, [vector(t) for t in held_tasks])
    # the held-out windows of drift_by_contact, in its order: one task row per window start
    held_windows = np.stack([vector(t) for (_, a), t in zip(held, held_tasks, strict=True)
                             for _ in range(0, len(a) - max(HORIZONS), 2)])  # fmt: skip
    c, hc = data["contact"], held_data["contact"]
    print(f"{len(c)} transitions ({c.mean():.3f} with a contact); held out {len(hc)} ({hc.sum()} contacts)")
    for variant in ["analytic"] + args.variants:
        start = time.time()
        step = (lambda st, ac, tk: analytic_step(st)) if variant == "analytic" else fit(variant, data, args.epochs,
                                                                                      args.contact_epochs)  # fmt: skip
        train_err, held_err = velocity_error(step, data), velocity_error(step, held_data)
        print(f"{variant}: one-step ball velocity error on contact steps, train {train_err[c].mean():.3f} m/s, "
              f"held out {held_err[hc].mean():.3f} (median {np.median(held_err[hc]):.3f}; the true change averages "
              f"{np.linalg.norm((held_data['s2'] - held_data['s'])[hc][:, 11:13], axis=-1).mean():.3f})")  # fmt: skip
        drift = drift_by_contact(lambda st, ac, f=step: f(st, ac, held_windows), held, "world", HORIZONS, DT)
        for h, parts in drift.items():
            text = ", ".join(f"{name} {e * 100:.1f} cm (n = {k})" for name, (e, k) in parts.items())
            print(f"{variant}, {h * DT:.2f} s: ball position error {text} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
