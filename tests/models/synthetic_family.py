"""A tiny task family for learning tests: a driven, damped oscillator whose actuator gain is hidden per episode.

state (x, v), action u in [-1, 1]:
    v' = v + dt * (gain * u - stiffness * x - damping * v)
    x' = x + dt * v'
    r  = -x'^2 - 0.1 u^2
The gain is drawn once per segment and never observed; a model that does not adapt can only predict with an
average gain, so its error grows with |gain - mean gain| and with the horizon.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from mbmeta.types import MetaBatch, Transition

OBS_DIM, ACTION_DIM, TASK_DIM = 2, 1, 1


def simulate(gain: torch.Tensor, steps: int, generator: torch.Generator, dt: float = 0.2) -> Transition:
    """Roll out B random-action trajectories; gain [B]. Returns fields [B, steps, ...]."""
    b = gain.shape[0]
    state = torch.randn(b, 2, generator=generator)
    actions = torch.rand(b, steps, 1, generator=generator) * 2 - 1
    obs, next_obs, reward = [], [], []
    for t in range(steps):
        x, v = state[:, 0], state[:, 1]
        u = actions[:, t, 0]
        v2 = v + dt * (gain * u - 1.0 * x - 0.1 * v)
        x2 = x + dt * v2
        nxt = torch.stack([x2, v2], dim=-1)
        obs.append(state)
        next_obs.append(nxt)
        reward.append(-(x2**2) - 0.1 * u**2)
        state = nxt
    return Transition(
        obs=torch.stack(obs, 1),
        action=actions,
        next_obs=torch.stack(next_obs, 1),
        reward=torch.stack(reward, 1),
        terminated=torch.zeros(b, steps, dtype=torch.bool),
    )


def make_batch(gains: torch.Tensor, n: int, k: int, m: int, generator: torch.Generator) -> MetaBatch:
    """n segments of K context + M target transitions; each segment's gain drawn uniformly from ``gains``."""
    gain = gains[torch.randint(len(gains), (n,), generator=generator)]
    traj = simulate(gain, k + m, generator)
    context = Transition(*(f[:, :k] for f in traj))
    target = Transition(*(f[:, k:] for f in traj))
    return MetaBatch(
        context=context, target=target, task=gain[:, None], context_mask=torch.ones(n, k, dtype=torch.bool)
    )


class SegmentDataset(Dataset):
    """Indexable view of a MetaBatch (one segment per item) for a plain torch DataLoader."""

    def __init__(self, batch: MetaBatch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return self.batch.task.shape[0]

    def __getitem__(self, i: int) -> MetaBatch:
        c, t = self.batch.context, self.batch.target
        return MetaBatch(
            Transition(*(f[i] for f in c)),
            Transition(*(f[i] for f in t)),
            self.batch.task[i],
            self.batch.context_mask[i],
        )
