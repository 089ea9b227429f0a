import pytest
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, make_batch

from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.models.adapters import ADAPTATION_NAMES
from mbmeta.types import AdaptedDynamics, MetaDynamics

GAINS = torch.tensor([0.5, 1.0, 1.5])
E = 3


def small_model(adaptation: str, **kwargs) -> MetaDynamicsModel:
    defaults = dict(ensemble_size=E, hidden_sizes=(32, 32), reward_hidden=(16,), latent_dim=4, context_hidden=(16,))
    model = MetaDynamicsModel(
        OBS_DIM, ACTION_DIM, TASK_DIM, adaptation=adaptation, gru_hidden=16, **{**defaults, **kwargs}
    )
    batch = make_batch(GAINS, 64, 8, 4, torch.Generator().manual_seed(123))
    model.normaliser.fit(transition_statistics(batch.context, batch.task))
    return model


@pytest.mark.parametrize("adaptation", ADAPTATION_NAMES)
def test_adapted_prediction_shapes_and_protocols(adaptation):
    model = small_model(adaptation)
    assert isinstance(model, MetaDynamics)
    batch = make_batch(GAINS, 4, 6, 2, torch.Generator().manual_seed(0))
    adapted = model.adapt(batch.context, task=batch.task)
    assert isinstance(adapted, AdaptedDynamics) and adapted.ensemble_size == E
    g = torch.Generator().manual_seed(1)
    obs, action = torch.randn(E, 4, 5, 2, OBS_DIM, generator=g), torch.randn(E, 4, 5, 2, ACTION_DIM, generator=g)
    with torch.no_grad():
        pred = adapted(obs, action)
        flat = adapted(obs.reshape(E, 4, 10, OBS_DIM), action.reshape(E, 4, 10, ACTION_DIM))
    assert pred.mean.shape == pred.var.shape == (E, 4, 5, 2, OBS_DIM)
    assert pred.reward.shape == (E, 4, 5, 2)
    assert (pred.var > 0).all() and torch.isfinite(pred.mean).all()
    # rows are independent: the *S layout does not matter
    torch.testing.assert_close(pred.mean.reshape(E, 4, 10, OBS_DIM), flat.mean)
    torch.testing.assert_close(pred.reward.reshape(E, 4, 10), flat.reward)


def test_row_e_b_is_member_e_under_env_b():
    model = small_model("context")
    batch = make_batch(GAINS, 3, 6, 2, torch.Generator().manual_seed(2))
    obs = torch.randn(1, 3, 7, OBS_DIM, generator=torch.Generator().manual_seed(3)).expand(E, -1, -1, -1)
    action = torch.zeros(E, 3, 7, ACTION_DIM)
    with torch.no_grad():
        pred = model.adapt(batch.context)(obs, action).mean
        # members disagree on the same rows
        assert not torch.allclose(pred[0], pred[1])
        # reversing the environments' contexts reverses the predictions env-wise
        flipped = model.adapt(type(batch.context)(*(f.flip(0) for f in batch.context)))
        torch.testing.assert_close(flipped(obs.flip(1), action)[0].flip(1), pred)


def test_prediction_is_obs_plus_denormalised_delta():
    model = small_model("none")
    n = model.normaliser
    obs, action = torch.randn(E, 2, 5, OBS_DIM), torch.randn(E, 2, 5, ACTION_DIM)
    batch = make_batch(GAINS, 2, 1, 1, torch.Generator().manual_seed(4))
    with torch.no_grad():
        pred = model.adapt(batch.context)(obs, action)
        x = torch.cat([n.normalise_obs(obs), n.normalise_action(action)], -1)
        out = model.dynamics_net(x.reshape(E, 10, -1)).view(E, 2, 5, -1)
    torch.testing.assert_close(pred.mean, obs + out[..., :OBS_DIM] * n.delta_std + n.delta_mean)
    torch.testing.assert_close(pred.var, model.head(out[..., OBS_DIM:]).exp() * n.delta_std**2)


def test_deterministic_model_has_zero_variance_and_mse_loss():
    model = small_model("context", probabilistic=False)
    batch = make_batch(GAINS, 4, 6, 2, torch.Generator().manual_seed(5))
    pred = model.adapt(batch.context)(batch.target.obs.expand(E, -1, -1, -1), batch.target.action.expand(E, -1, -1, -1))
    assert torch.equal(pred.var, torch.zeros_like(pred.mean))
    total, terms = model.loss(batch)
    assert "dynamics_nll" not in terms
    torch.testing.assert_close(total, E * (terms["dynamics_mse"] + terms["reward_mse"]))


def test_no_reward_model():
    model = small_model("none", learn_reward=False)
    batch = make_batch(GAINS, 2, 3, 2, torch.Generator().manual_seed(6))
    pred = model.adapt(batch.context)(batch.target.obs.expand(E, -1, -1, -1), batch.target.action.expand(E, -1, -1, -1))
    assert pred.reward is None and "reward_mse" not in model.loss(batch)[1]


@pytest.mark.parametrize("adaptation", ADAPTATION_NAMES)
def test_loss_trains_every_parameter(adaptation):
    model = small_model(adaptation, backward_loss_weight=0.0 if adaptation == "gradient" else 0.5)
    batch = make_batch(GAINS, 8, 6, 3, torch.Generator().manual_seed(7))
    total, terms = model.loss(batch, multi_step=True)
    assert torch.isfinite(total)
    expected = {"loss", "dynamics_mse", "dynamics_nll", "logvar_bound", "reward_mse", "mse_h1", "mse_h2", "mse_h3"}
    assert expected <= set(terms)
    if adaptation != "gradient":
        assert "backward" in terms
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_multi_step_error_matches_manual_rollout():
    model = small_model("context")
    batch = make_batch(GAINS, 5, 6, 4, torch.Generator().manual_seed(8))
    errors = model.multi_step_error(batch)
    assert errors.shape == (4,) and (errors >= 0).all()
    adapted = model.adapt(batch.context)
    obs = batch.target.obs[:, 0]
    with torch.no_grad():
        for h in range(4):
            pred = adapted(obs.expand(E, -1, -1), batch.target.action[:, h].expand(E, -1, -1)).mean.mean(0)
            expected = ((pred - batch.target.next_obs[:, h]) / model.normaliser.obs_std).square().mean()
            torch.testing.assert_close(errors[h], expected)
            obs = pred


def test_multi_step_error_in_given_units_does_not_depend_on_the_normaliser_scale():
    batch = make_batch(GAINS, 5, 6, 4, torch.Generator().manual_seed(8))
    model = small_model("none")
    scale = torch.linspace(0.5, 2.0, OBS_DIM)
    torch.testing.assert_close(
        model.multi_step_error(batch, scale=2 * scale), model.multi_step_error(batch, scale=scale) / 4
    )
    # The default units are the model's own obs std; shared units make two normalisers' errors comparable.
    own = model.multi_step_error(batch)
    torch.testing.assert_close(model.multi_step_error(batch, scale=model.normaliser.obs_std), own)


def test_same_seed_same_model():
    a, b = small_model("context", seed=3), small_model("context", seed=3)
    c = small_model("context", seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.dynamics_net.layers[0].weight, c.dynamics_net.layers[0].weight)


def test_configure_finetune_modes():
    model = small_model("context")
    model.configure_finetune("frozen_encoder")
    assert not any(p.requires_grad for p in model.adapter.parameters())
    assert all(p.requires_grad for p in model.dynamics_net.parameters())
    model.configure_finetune("last_layer")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "dynamics_net.layers.2.weight",
        "dynamics_net.layers.2.bias",
        "reward_net.layers.1.weight",
        "reward_net.layers.1.bias",
        "head.max_logvar",
        "head.min_logvar",
    }
    model.configure_finetune("all")
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="finetune mode must be one of"):
        model.configure_finetune("encoder")


def test_bad_inputs_raise_clear_errors():
    model = small_model("context")
    batch = make_batch(GAINS, 2, 3, 2, torch.Generator().manual_seed(9))
    adapted = model.adapt(batch.context)
    with pytest.raises(ValueError, match=r"obs must be \[E=3, B=2"):
        adapted(torch.zeros(3, 5, 4, OBS_DIM), torch.zeros(3, 5, 4, ACTION_DIM))
    with pytest.raises(ValueError, match="action must be"):
        adapted(torch.zeros(3, 2, 4, OBS_DIM), torch.zeros(3, 2, 4, 3))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        model.adapt(batch.context, mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="transitions must be"):
        model.adapt(type(batch.context)(*(f[:, :, None] if f.dim() == 2 else f for f in batch.context)))
    with pytest.raises(ValueError, match="adaptation must be one of"):
        MetaDynamicsModel(2, 1, adaptation="maml")
    with pytest.raises(ValueError, match="not supported with adaptation='gradient'"):
        MetaDynamicsModel(2, 1, adaptation="gradient", backward_loss_weight=0.5)
