"""Step 10 of the diagnosis: fit the hybrid model's contact and measure its one-step error.

Fits :class:`mbmeta.envs.juggler_contact.BallContact`'s four constants (stiffness, damping, friction rate and
coefficient: one set for all train tasks, the task not told), from its generic starting values, by gradient descent
through the simulated contact, on the contact steps
of a run's buffer (steps whose ball did not move ballistically, without those touching the floor, which lose the
ball anyway), every tenth episode held out. Then prints the contact-step error of the ball's velocity and position
on the held-out episodes for: the starting values and the fitted ones, both with the true joints at
the step's end, and the fitted ones with the joints a learned model predicts (``--checkpoint``), beside that learned
model's own prediction of the ball. Train tasks only (the buffer's). :class:`HybridDynamics` wraps a learned model
without known physics (pilot 3's) with the fitted contact, for ``bounce_closed_loop.py --contact``.

Usage::

    python experiments/juggler_diagnosis/diagnostics/hybrid_fit.py \
        --buffer experiments/juggler_bounce_servo/pilot/none-10k-seed0/buffer.npz \
        --checkpoint experiments/juggler_bounce_servo/pilot/none-10k-seed0/checkpoints/iteration_006.ckpt \
        --out experiments/juggler_diagnosis/diagnostics/outputs/hybrid_contact.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs.juggler_contact import BallContact, contact_transitions
from mbmeta.types import Prediction

CONSTANTS = ("stiffness", "damping", "friction_rate", "friction")


class HybridDynamics:
    """An :class:`~mbmeta.types.AdaptedDynamics`: the adapted model's joints, the ball and paddle from ``contact``.

    The computed entries get zero variance (as a model with known physics gives them).
    """

    can_skip_reward = True

    def __init__(self, adapted, contact: BallContact) -> None:
        self.adapted, self.contact = adapted, contact
        self.ensemble_size = adapted.ensemble_size

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor, action: torch.Tensor, with_reward: bool = True) -> Prediction:
        """``obs [E, B, *S, 14]``, ``action [E, B, *S, 3]`` -> Prediction (mean/var ``[E, B, *S, 14]``, no reward)."""
        kwargs = {"with_reward": False} if getattr(self.adapted, "can_skip_reward", False) else {}
        arm = self.adapted(obs, action, **kwargs)
        mean = self.contact.complete(obs, arm.mean)
        var = arm.var.index_fill(-1, torch.tensor(self.contact.computed, device=obs.device), 0.0)
        return Prediction(mean, var, None)


def save_contact(contact: BallContact, path: str | Path) -> None:
    """Write the contact's four constants as JSON."""
    Path(path).write_text(json.dumps(contact.parameters_dict(), indent=1) + "\n")


def load_contact(path: str | Path) -> BallContact:
    """A :class:`BallContact` with the constants of :func:`save_contact`'s file."""
    values = json.loads(Path(path).read_text())
    return BallContact(**{name: values[name] for name in CONSTANTS})


def contact_steps(buffer: EpisodeBuffer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The steps with a ball contact off the floor: ``obs, next_obs [N, 14]``, ``action [N, 3]``, ``held_out [N]``.

    Float64; ``held_out`` marks every tenth episode's steps.
    """
    obs = torch.tensor(buffer.obs, dtype=torch.float64)
    nxt = torch.tensor(buffer.next_obs, dtype=torch.float64)
    episode = torch.as_tensor(np.repeat(np.arange(buffer.num_episodes), buffer.episode_lengths))
    keep = contact_transitions(obs, nxt, BallContact.dt)
    action = torch.tensor(buffer.action, dtype=torch.float64)
    return obs[keep], nxt[keep], action[keep], (episode[keep] % 10) == 0


def unadapted(checkpoint: str):
    """A checkpoint's model adapted to one environment with an empty context (a ``none`` model's only form)."""
    from mbmeta.models.checkpoint import load_dynamics
    from mbmeta.types import Transition

    model = load_dynamics(checkpoint).eval()
    if model.adaptation_name != "none":
        raise SystemExit(f"--checkpoint: a `none` model is needed here, got {model.adaptation_name!r}")
    empty = Transition(
        torch.zeros(1, 0, 14),
        torch.zeros(1, 0, 3),
        torch.zeros(1, 0, 14),
        torch.zeros(1, 0),
        torch.zeros(1, 0, dtype=torch.bool),
    )
    return model.adapt(empty)


def errors(pred: torch.Tensor, true: torch.Tensor) -> str:
    """Velocity (m/s) and position (cm) error of ``pred`` vs ``true`` ball states ``[N, 5]``, as text."""
    ev = (pred[:, 2:4] - true[:, 2:4]).norm(dim=-1)
    ep = (pred[:, 0:2] - true[:, 0:2]).norm(dim=-1) * 100
    return (
        f"velocity rms {ev.pow(2).mean().sqrt():.3f} median {ev.median():.3f} p90 {ev.quantile(0.9):.3f} m/s; "
        f"position rms {ep.pow(2).mean().sqrt():.2f} cm"
    )


def fit(contact: BallContact, obs: torch.Tensor, nxt: torch.Tensor, iterations: int, lr: float) -> None:
    """Adam on :meth:`BallContact.loss`, full batch, in place; prints the constants every 20 iterations."""
    optimiser = torch.optim.Adam(contact.parameters(), lr=lr)
    for i in range(iterations):
        loss = contact.loss(obs, nxt)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if i % 20 == 0 or i == iterations - 1:
            values = ", ".join(f"{k} {v:.4g}" for k, v in contact.parameters_dict().items())
            print(f"iteration {i}: loss {float(loss.detach()):.4f} ({values})", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Fit, print the errors, optionally save the constants."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buffer", required=True, help="a juggler_bounce_servo run's buffer.npz")
    p.add_argument("--checkpoint", default=None, help="a learned model of the same family, for its joints")
    p.add_argument("--rows", type=int, default=8000, help="training contact steps used per iteration (a fixed draw)")
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--out", default=None, help="write the fitted parameters here (JSON)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    buffer = EpisodeBuffer.load(args.buffer)
    obs, nxt, action, held_out = contact_steps(buffer)
    train = torch.nonzero(~held_out)[:, 0]
    train = train[torch.randperm(len(train))[: args.rows]]
    print(f"{len(obs)} contact steps off the floor; fitting on {len(train)}, {int(held_out.sum())} held out")
    contact = BallContact()
    with torch.no_grad():
        start_error = errors(contact.ball(obs[held_out], nxt[held_out, 0:6]), nxt[held_out, 9:14])
        print("held out, starting values, true joints:", start_error)
    start = time.time()
    fit(contact, obs[train], nxt[train], args.iterations, args.lr)
    print(f"fitted in {time.time() - start:.0f} s")
    with torch.no_grad():
        print(
            "held out, fitted, true joints:",
            errors(contact.ball(obs[held_out], nxt[held_out, 0:6]), nxt[held_out, 9:14]),
        )
        print("train, fitted, true joints:", errors(contact.ball(obs[train], nxt[train, 0:6]), nxt[train, 9:14]))
    if args.checkpoint:
        learned = unadapted(args.checkpoint)
        o, n = obs[held_out].float(), nxt[held_out]
        members = learned.ensemble_size
        with torch.no_grad():
            a = action[held_out].float()
            arm = learned(o.expand(members, 1, *o.shape), a.expand(members, 1, *a.shape))
            joints = arm.mean.mean(0)[0].double()  # [N, 14] the members' average, as expectation planning steps
            print("held out, learned model's own ball:", errors(joints[:, 9:14], n[:, 9:14]))
            print("held out, fitted, learned joints:", errors(contact.ball(obs[held_out], joints[:, 0:6]), n[:, 9:14]))
            q_err = (joints[:, 0:3] - n[:, 0:3]).abs().mean(0)
            print(f"held out, learned joints' mean abs error: q {q_err.numpy().round(4)} rad")
    if args.out:
        save_contact(contact, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
