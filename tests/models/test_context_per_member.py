"""``context_per_member``: one context encoder per ensemble member, so ``z`` is ``[E, B, Z]``.

Member e of such a model must be exactly the CaDM model made of encoder e and dynamics member e: its z is the masked
mean of encoder e alone, and its predictions (dynamics, reward, backward net) are member e's under that z.
"""

import pytest
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, make_batch

from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.models.adapters import Adaptation, ContextAdapter
from mbmeta.models.ensemble import EnsembleMLP

GAINS = torch.tensor([0.5, 1.0, 1.5])
E, Z = 3, 4


def per_member_model(**kwargs) -> MetaDynamicsModel:
    model = MetaDynamicsModel(
        OBS_DIM,
        ACTION_DIM,
        TASK_DIM,
        adaptation="context",
        context_per_member=True,
        ensemble_size=E,
        hidden_sizes=(32, 32),
        reward_hidden=(16,),
        latent_dim=Z,
        context_hidden=(16,),
        backward_loss_weight=0.5,
        **kwargs,
    )
    batch = make_batch(GAINS, 64, 8, 4, torch.Generator().manual_seed(123))
    model.normaliser.fit(transition_statistics(batch.context, batch.task))
    return model


def member_encoder(adapter: ContextAdapter, e: int) -> ContextAdapter:
    """A shared-encoder adapter holding encoder e of a per-member adapter."""
    single = ContextAdapter(OBS_DIM, ACTION_DIM, Z, (16,))
    with torch.no_grad():
        for mine, theirs in zip(single.encoder.parameters(), adapter.encoder.parameters(), strict=True):
            mine.copy_(theirs[e : e + 1])
    return single


def test_each_members_z_is_its_own_encoders_masked_mean():
    model = per_member_model()
    batch = make_batch(GAINS, 4, 6, 2, torch.Generator().manual_seed(0))
    mask = torch.tensor([[True] * 6, [False] * 2 + [True] * 4, [False] * 6, [False] * 5 + [True]])
    context = model.normalise_segment(batch.context)
    z = model.adapt_normalised(context, mask, None).z
    assert z.shape == (E, 4, Z)
    for e in range(E):
        torch.testing.assert_close(z[e], member_encoder(model.adapter, e)(model, context, mask, None).z)
    assert torch.equal(z[:, 2], torch.zeros(E, Z))  # an empty context is the "no information" z = 0 for every member
    assert not torch.allclose(z[0], z[1])  # the encoders differ


def test_member_e_predicts_with_its_own_z():
    model = per_member_model()
    batch = make_batch(GAINS, 3, 6, 4, torch.Generator().manual_seed(1))
    adaptation = model.adapt_normalised(model.normalise_segment(batch.context), None, None)
    target = model.normalise_segment(batch.target)
    x = torch.cat([target.obs, target.action], -1).expand(E, -1, -1, -1)
    delta = target.delta.expand(E, -1, -1, -1)
    with torch.no_grad():
        mean, logvar, reward = model.predict_normalised(x, adaptation, delta_for_reward=delta)
        back = model.backward_net.grouped_forward(x, None, adaptation.z)
        for e in range(E):
            shared = Adaptation(z=adaptation.z[e], params=None)
            mean_e, logvar_e, reward_e = model.predict_normalised(x, shared, delta_for_reward=delta)
            torch.testing.assert_close(mean[e], mean_e[e])
            torch.testing.assert_close(logvar[e], logvar_e[e])
            torch.testing.assert_close(reward[e], reward_e[e])
            torch.testing.assert_close(back[e], model.backward_net.grouped_forward(x, None, shared.z)[e])


@pytest.mark.parametrize("fill", [1e6, float("nan")])
def test_padded_slots_do_not_change_z(fill):
    model = per_member_model()
    batch = make_batch(GAINS, 5, 6, 2, torch.Generator().manual_seed(2))
    padded = type(batch.context)(
        *(torch.cat([torch.full((5, 3, *f.shape[2:]), fill).to(f.dtype), f], 1) for f in batch.context)
    )
    mask = torch.ones(5, 9, dtype=torch.bool)
    mask[:, :3] = False
    z = model.adapt(batch.context).adaptation.z
    z_padded = model.adapt(padded, mask=mask).adaptation.z
    assert torch.isfinite(z_padded).all()
    torch.testing.assert_close(z, z_padded, atol=1e-6, rtol=1e-5)


def test_adapted_model_plans_over_any_row_layout():
    model = per_member_model()
    batch = make_batch(GAINS, 2, 6, 2, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(4)
    obs, action = torch.randn(E, 2, 5, 4, OBS_DIM, generator=g), torch.randn(E, 2, 5, 4, ACTION_DIM, generator=g)
    with torch.no_grad():
        adapted = model.adapt(batch.context)
        pred = adapted(obs, action)
        flat = adapted(obs.reshape(E, 2, 20, OBS_DIM), action.reshape(E, 2, 20, ACTION_DIM))
    assert pred.mean.shape == (E, 2, 5, 4, OBS_DIM) and torch.isfinite(pred.mean).all()
    torch.testing.assert_close(pred.mean.reshape(E, 2, 20, OBS_DIM), flat.mean)


def test_loss_trains_every_encoder():
    model = per_member_model()
    batch = make_batch(GAINS, 8, 6, 3, torch.Generator().manual_seed(5))
    total, _ = model.loss(batch, multi_step=True)
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    for name, p in model.adapter.encoder.named_parameters():  # every member's encoder, not just one of them
        assert p.grad.flatten(1).abs().sum(-1).gt(0).all(), name


def test_shared_encoder_is_the_default_and_unchanged():
    shared = MetaDynamicsModel(OBS_DIM, ACTION_DIM, TASK_DIM, adaptation="context", ensemble_size=E, latent_dim=Z)
    assert shared.adapter.encoder.ensemble_size == 1 and not shared.adapter.per_member
    assert per_member_model().adapter.encoder.ensemble_size == E


def test_bad_settings_name_the_problem():
    with pytest.raises(ValueError, match="context_per_member applies to adaptation='context' only"):
        MetaDynamicsModel(OBS_DIM, ACTION_DIM, TASK_DIM, adaptation="recurrent", context_per_member=True)
    net = EnsembleMLP(OBS_DIM + Z, 1, (8,), E)
    with pytest.raises(ValueError, match=r"cond \[B=2, Z\] or \[E=3, B=2, Z\], got \(2, 2, 4\)"):
        net.grouped_forward(torch.zeros(E, 2, 5, OBS_DIM), cond=torch.zeros(2, 2, Z))
