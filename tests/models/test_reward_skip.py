"""AdaptedModel(obs, action, with_reward=False): skips the learned reward net and changes nothing else."""

from __future__ import annotations

import pytest
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, make_batch

from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.models.adapters import ADAPTATION_NAMES

E = 3


@pytest.mark.parametrize("adaptation", ADAPTATION_NAMES)
def test_skipping_the_reward_head_keeps_mean_and_var_identical(adaptation):
    model = MetaDynamicsModel(
        OBS_DIM,
        ACTION_DIM,
        TASK_DIM,
        adaptation=adaptation,
        ensemble_size=E,
        hidden_sizes=(32, 32),
        reward_hidden=(16,),
        latent_dim=4,
        context_hidden=(16,),
        gru_hidden=16,
    )
    batch = make_batch(torch.tensor([0.5, 1.0, 1.5]), 4, 6, 2, torch.Generator().manual_seed(0))
    model.normaliser.fit(transition_statistics(batch.context, batch.task))
    g = torch.Generator().manual_seed(1)
    obs, action = torch.randn(E, 4, 9, OBS_DIM, generator=g), torch.randn(E, 4, 9, ACTION_DIM, generator=g)
    calls = []
    with torch.no_grad():
        adapted = model.adapt(batch.context, task=batch.task)
        full = adapted(obs, action)
        # grouped_forward is how the reward net runs (RewardNet.predict calls it): count its calls
        model.reward_net.grouped_forward = _counting(model.reward_net.grouped_forward, calls)
        skipped = adapted(obs, action, with_reward=False)
        assert calls == [], "the reward net must not run"
        again = adapted(obs, action)
        assert calls, "and it runs when asked"
    assert full.reward is not None and skipped.reward is None
    assert torch.equal(skipped.mean, full.mean) and torch.equal(skipped.var, full.var)
    assert torch.equal(again.reward, full.reward)


def _counting(fn, calls):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapped
