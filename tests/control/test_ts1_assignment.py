"""TS-1's member assignment (groups turned by random places each step) has the law of PETS's TS-1."""

from __future__ import annotations

import pytest
import torch

from mbmeta.control.objective import RolloutObjective
from mbmeta.types import Prediction


class CountingMembers:
    """Member e adds e to x (and 1 to a step counter); records which member computed each slot."""

    def __init__(self, members: int) -> None:
        self.ensemble_size = members
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, obs, action):
        self.shapes.append(tuple(obs.shape))
        e = torch.arange(self.ensemble_size, dtype=obs.dtype).reshape(-1, *([1] * (obs.ndim - 1)))
        step = torch.zeros_like(obs)
        step[..., 0:1] = e
        step[..., 1:2] = 1.0
        mean = obs + step
        return Prediction(mean, torch.zeros_like(mean), None)


def final_x(obs, action, next_obs):
    return next_obs[..., 0]


def last_step_only(horizon):
    def reward(obs, action, next_obs):
        return torch.where(next_obs[..., 1] == horizon, next_obs[..., 0], torch.zeros_like(next_obs[..., 0]))

    return reward


@pytest.mark.parametrize("members, particles, candidates", [(5, 1, 4000), (3, 4, 1000), (5, 3, 1001)])
def test_each_particle_gets_an_independent_uniform_member_every_step(members, particles, candidates):
    horizon = 8
    model = CountingMembers(members)
    objective = RolloutObjective(
        model,
        torch.zeros(1, 2),
        last_step_only(horizon),
        propagation="ts1",
        particles=particles,
        generator=torch.Generator().manual_seed(0),
    )
    returns = objective(torch.zeros(1, candidates, horizon, 1))  # x after H steps, averaged over a candidate's P
    # x_H = sum of H i.i.d. uniform members: mean H (E-1)/2, variance H (E²-1)/12 per particle; a member kept for
    # the whole rollout would give H² (E²-1)/12 instead.
    mean, var = horizon * (members - 1) / 2, horizon * (members**2 - 1) / 12
    assert abs(returns.mean().item() - mean) < 4 * (var / (candidates * particles)) ** 0.5
    # the candidate mean of P independent particles has variance var / P
    assert returns.var().item() == pytest.approx(var / particles, rel=0.15)
    rows = candidates * particles
    share = -(-rows // members)
    assert all(shape == (members, 1, share, 2) for shape in model.shapes), "every member computes S rows per step"
    assert len(model.shapes) == horizon


def test_ts1_is_reproducible_with_a_generator_and_differs_between_seeds():
    model = CountingMembers(3)

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        objective = RolloutObjective(
            model, torch.zeros(2, 2), final_x, propagation="ts1", particles=2, generator=generator
        )
        return objective(torch.zeros(2, 50, 5, 1))

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
