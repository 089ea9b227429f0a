"""AdaptedModel folds the normaliser, conditioning and Gaussian head into its networks: the same predictions."""

from __future__ import annotations

import pytest
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, make_batch

from mbmeta.models import MetaDynamicsModel
from mbmeta.models.adapters import ADAPTATION_NAMES
from mbmeta.models.gaussian import GaussianHead
from mbmeta.types import Prediction

E, B = 3, 4


def fitted_model(adaptation: str, **kwargs) -> MetaDynamicsModel:
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
        **kwargs,
    )
    g = torch.Generator().manual_seed(0)
    # Statistics far from (0, 1), so that a misplaced fold would show.
    stats = {
        "obs_mean": torch.tensor([3.0, -2.0]),
        "obs_std": torch.tensor([0.5, 4.0]),
        "action_mean": torch.tensor([0.3]),
        "action_std": torch.tensor([2.0]),
        "delta_mean": torch.tensor([0.1, -0.7]),
        "delta_std": torch.tensor([0.05, 3.0]),
        "reward_mean": torch.tensor(-1.5),
        "reward_std": torch.tensor(2.5),
        "task_mean": torch.tensor([1.0]),
        "task_std": torch.tensor([0.4]),
    }
    model.normaliser.fit(stats)
    with torch.no_grad():  # non-zero biases everywhere
        for p in model.parameters():
            if p.dim() >= 2 and p.shape[-2] == 1:
                p.normal_(generator=g)
    return model.eval()


def unfolded(model: MetaDynamicsModel, adapted, obs, action) -> Prediction:
    """The prediction the long way: normalise, predict in normalised units, denormalise (the training path)."""
    n = model.normaliser
    x = torch.cat([n.normalise_obs(obs), n.normalise_action(action)], -1).reshape(E, B, -1, OBS_DIM + ACTION_DIM)
    delta, logvar, reward = model.predict_normalised(x, adapted.adaptation)
    mean = obs + n.denormalise_delta(delta).view(obs.shape)
    var = torch.zeros_like(mean) if logvar is None else (logvar.exp() * n.delta_std.square()).view(obs.shape)
    reward = None if reward is None else n.denormalise_reward(reward).view(obs.shape[:-1])
    return Prediction(mean, var, reward)


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    obs = torch.tensor([3.0, -2.0]) + torch.randn(E, B, 5, 7, OBS_DIM, generator=g) * torch.tensor([0.5, 4.0])
    return obs, torch.randn(E, B, 5, 7, ACTION_DIM, generator=g)


@pytest.mark.parametrize("adaptation", ADAPTATION_NAMES)
@pytest.mark.parametrize("probabilistic", [True, False])
def test_folded_prediction_equals_the_unfolded_one(adaptation, probabilistic):
    model = fitted_model(adaptation, probabilistic=probabilistic)
    batch = make_batch(torch.tensor([0.5, 1.0, 1.5]), B, 6, 2, torch.Generator().manual_seed(2))
    obs, action = inputs()
    with torch.no_grad():
        adapted = model.adapt(batch.context, task=batch.task)
        folded = adapted(obs, action)
        reference = unfolded(model, adapted, obs, action)
    # The folds reorder sums and products: equal to float rounding, not bit for bit.
    torch.testing.assert_close(folded.mean, reference.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded.var, reference.var, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(folded.reward, reference.reward, rtol=1e-5, atol=1e-5)
    if not probabilistic:
        assert torch.equal(folded.var, torch.zeros_like(folded.mean))


def test_rows_expanded_over_the_members_give_the_same_prediction():
    model = fitted_model("context")
    batch = make_batch(torch.tensor([0.5, 1.5]), B, 6, 2, torch.Generator().manual_seed(3))
    obs, action = inputs(4)
    obs, action = obs[:1], action[:1]
    with torch.no_grad():
        adapted = model.adapt(batch.context)
        shared = adapted(obs.expand(E, -1, -1, -1, -1), action.expand(E, -1, -1, -1, -1))
        copied = adapted(obs.repeat(E, 1, 1, 1, 1), action.repeat(E, 1, 1, 1, 1))
    for a, b in zip(shared, copied, strict=True):
        assert torch.equal(a, b)


def test_planning_weights_are_built_once_without_gradients_and_afresh_with_them():
    model = fitted_model("context")
    batch = make_batch(torch.tensor([1.0]), B, 6, 2, torch.Generator().manual_seed(5))
    obs, action = inputs(6)
    adapted = model.adapt(batch.context)
    with torch.no_grad():
        first = adapted.planning_weights(with_reward=False)
        assert first.reward is None, "the reward net is frozen only when asked for"
        full = adapted.planning_weights()
        assert full.dynamics is first.dynamics and full.reward is not None
        assert adapted.planning_weights() is full and adapted.planning_weights(with_reward=False) is full
    fresh = model.adapt(batch.context)
    assert fresh.planning_weights() is not fresh.planning_weights()
    pred = fresh(obs, action)  # gradients flow through the folds to the parameters
    (pred.mean.sum() + pred.var.sum() + pred.reward.sum()).backward()
    assert model.dynamics_net.layers[0].weight.grad.abs().sum() > 0 and model.head.max_logvar.grad is not None
    assert model.reward_net.layers[0].weight.grad.abs().sum() > 0


def test_bf16_autocast_prediction_is_close_and_float32():
    model = fitted_model("context")
    batch = make_batch(torch.tensor([1.0]), B, 6, 2, torch.Generator().manual_seed(7))
    obs, action = inputs(8)
    with torch.no_grad():
        adapted = model.adapt(batch.context)
        full = adapted(obs, action)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reduced = adapted(obs, action)
    assert reduced.mean.dtype == reduced.var.dtype == torch.float32
    delta_std = model.normaliser.delta_std
    torch.testing.assert_close((reduced.mean - full.mean) / delta_std, torch.zeros_like(full.mean), atol=0.1, rtol=0)
    torch.testing.assert_close(reduced.var.log(), full.var.log(), atol=0.1, rtol=0)


def test_folded_variance_equals_the_head():
    head = GaussianHead(4, max_logvar=0.3, min_logvar=-6.0)
    with torch.no_grad():
        head.max_logvar.add_(torch.tensor([0.0, 0.1, -0.2, 0.05]))
    raw = torch.linspace(-30, 30, 400).reshape(100, 4)
    scale = torch.tensor([0.5, 1.0, 2.0, 0.01])
    with torch.no_grad():
        expected = head(raw).exp() * scale.square()
        folded = head.folded(scale).variance(head.max_logvar - raw)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=0)
