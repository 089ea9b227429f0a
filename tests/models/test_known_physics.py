"""Known physics in a model: built from an import path, applied to predictions, fitted by the loss, saved."""

import pytest
import torch
from torch import nn

from mbmeta.models.checkpoint import load_dynamics
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.models.known_physics import build_known_physics
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import MetaBatch, Transition

OBS, ACT = 4, 2


class ShiftedCopy(nn.Module):
    """Toy physics: next entry 3 is obs entry 0 plus a learnable offset (true value 0.5 in the data below)."""

    computed = (3,)

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))

    def complete(self, obs, next_obs, state=None):
        return torch.cat([next_obs[..., :3], obs[..., :1] + self.offset], -1)

    def loss(self, obs, next_obs):
        return (obs[..., 0] + self.offset - next_obs[..., 3]).square().mean()


class NoLoss(nn.Module):
    computed = (3,)

    def complete(self, obs, next_obs, state=None):
        return next_obs


class OutOfRange(ShiftedCopy):
    computed = (4,)


class Adapting(ShiftedCopy):
    """Toy adapting physics: entry 3 is the mean of entry 0 over each environment's valid context slots."""

    adapts = True

    def adapt(self, context, mask):
        valid = torch.ones(context.obs.shape[:2]) if mask is None else mask.float()
        return ((context.obs[..., 0] * valid).sum(1) / valid.sum(1).clamp_min(1))[:, None]  # [B, 1]

    def complete(self, obs, next_obs, state=None):
        value = state[:, 0].view(1, -1, *([1] * (obs.dim() - 3))).expand(obs.shape[:-1])
        return torch.cat([next_obs[..., :3], value[..., None]], -1)


class ActionDriven(ShiftedCopy):
    """Toy physics using the action (``uses_action``): next entry 3 is obs entry 0 plus the offset times action 0."""

    uses_action = True

    def complete(self, obs, next_obs, state=None, action=None):
        return torch.cat([next_obs[..., :3], obs[..., :1] + self.offset * action[..., :1]], -1)

    def loss(self, obs, next_obs, action=None):
        return (obs[..., 0] + self.offset * action[..., 0] - next_obs[..., 3]).square().mean()


NotAModule = object
PATH = f"{__name__}:ShiftedCopy"


def _module(known_physics=PATH, **kwargs):
    module = MetaDynamicsModule(
        obs_dim=OBS, action_dim=ACT, adaptation="none", ensemble_size=2, hidden_sizes=(16,), learn_reward=False,
        known_physics=known_physics, **kwargs,
    )  # fmt: skip
    stats = {"obs_mean": torch.zeros(OBS), "obs_std": torch.ones(OBS), "action_mean": torch.zeros(ACT),
             "action_std": torch.ones(ACT), "delta_mean": torch.zeros(OBS), "delta_std": torch.ones(OBS),
             "reward_mean": torch.tensor(0.0), "reward_std": torch.tensor(1.0)}  # fmt: skip
    module.fit_normaliser(stats)
    return module


def _empty_context(b=1):
    return Transition(torch.zeros(b, 0, OBS), torch.zeros(b, 0, ACT), torch.zeros(b, 0, OBS), torch.zeros(b, 0),
                      torch.zeros(b, 0, dtype=torch.bool))  # fmt: skip


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_colon", "known_physics must be an import path 'package.module:name'"),
        ("a:b:c", "import path"),
        ("mbmeta.does_not_exist:X", "cannot be imported"),
        (f"{__name__}:Missing", "cannot be imported"),
        (f"{__name__}:NotAModule", "not a torch.nn.Module subclass"),
        (f"{__name__}:NoLoss", "lacks the KnownPhysics interface"),
        (f"{__name__}:OutOfRange", r"computed must be distinct observation entries in \[0, 4\)"),
    ],
)
def test_bad_paths_are_refused_in_one_line(path, message):
    with pytest.raises(ValueError, match=message) as err:
        build_known_physics(path, OBS)
    assert "\n" not in str(err.value)


def test_prediction_takes_the_computed_entries_from_the_physics_with_zero_variance():
    with_physics, plain = _module().dynamics.eval(), _module(known_physics=None).dynamics.eval()
    with torch.no_grad():
        with_physics.physics.offset.fill_(0.25)
    g = torch.Generator().manual_seed(0)
    obs, action = torch.randn(2, 1, 7, OBS, generator=g), torch.randn(2, 1, 7, ACT, generator=g)
    with torch.no_grad():
        got = with_physics.adapt(_empty_context())(obs, action)
        net = plain.adapt(_empty_context())(obs, action)  # same seed: the same network
    assert torch.equal(got.mean[..., :3], net.mean[..., :3]) and torch.equal(got.var[..., :3], net.var[..., :3])
    assert torch.allclose(got.mean[..., 3], obs[..., 0] + 0.25)
    assert bool((got.var[..., 3] == 0).all()) and bool((net.var[..., 3] > 0).all())


def test_training_loss_fits_the_physics_parameters():
    module = _module()
    model: MetaDynamicsModel = module.dynamics
    g = torch.Generator().manual_seed(1)
    obs, action = torch.randn(8, 5, OBS, generator=g), torch.randn(8, 5, ACT, generator=g)
    next_obs = obs + 0.1 * torch.randn(8, 5, OBS, generator=g)
    next_obs[..., 3] = obs[..., 0] + 0.5
    target = Transition(obs, action, next_obs, torch.zeros(8, 5), torch.zeros(8, 5, dtype=torch.bool))
    batch = MetaBatch(context=_empty_context(8), target=target, task=torch.zeros(8, 0), context_mask=None)
    total, terms = model.loss(batch)
    plain_total, _ = _module(known_physics=None).dynamics.loss(batch)
    assert torch.allclose(terms["physics"], torch.tensor(0.25)) and torch.allclose(total, plain_total + 0.25)
    optimiser = module.configure_optimizers()
    physics_group = [grp for grp in optimiser.param_groups if any(p is model.physics.offset for p in grp["params"])]
    assert len(physics_group) == 1 and physics_group[0]["lr"] == module.hparams.physics_lr
    for _ in range(300):
        optimiser.zero_grad()
        model.loss(batch)[0].backward()
        optimiser.step()
    assert abs(float(model.physics.offset.detach()) - 0.5) < 0.02


def test_checkpoint_round_trip_keeps_the_physics(tmp_path):
    module = _module(physics_lr=0.05)
    with torch.no_grad():
        module.dynamics.physics.offset.fill_(-0.75)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    loaded = load_dynamics(path)
    assert float(loaded.physics.offset.detach()) == -0.75
    obs, action = torch.randn(2, 1, 3, OBS), torch.randn(2, 1, 3, ACT)
    with torch.no_grad():
        expected = module.dynamics.eval().adapt(_empty_context())(obs, action)
        got = loaded.adapt(_empty_context())(obs, action)
    assert torch.equal(expected.mean, got.mean) and torch.equal(expected.var, got.var)


def test_negative_physics_settings_are_refused():
    with pytest.raises(ValueError, match="physics_loss_weight must be >= 0"):
        _module(physics_loss_weight=-1.0)
    with pytest.raises(ValueError, match="physics_lr must be a number > 0"):
        _module(physics_lr=0.0)


def test_an_adapting_physics_gets_its_state_from_each_environments_context():
    model = _module(known_physics=f"{__name__}:Adapting").dynamics.eval()
    context = Transition(
        torch.tensor([[[1.0, 0, 0, 0], [3.0, 0, 0, 0]], [[5.0, 0, 0, 0], [100.0, 0, 0, 0]]]),
        torch.zeros(2, 2, ACT), torch.zeros(2, 2, OBS), torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.bool),
    )  # fmt: skip
    mask = torch.tensor([[True, True], [True, False]])  # the second environment's 100 is padding
    obs, action = torch.randn(2, 2, 6, OBS), torch.randn(2, 2, 6, ACT)
    with torch.no_grad():
        prediction = model.adapt(context, mask)(obs, action)
    assert torch.equal(prediction.mean[:, 0, :, 3], torch.full((2, 6), 2.0))
    assert torch.equal(prediction.mean[:, 1, :, 3], torch.full((2, 6), 5.0))


class PredictionFitting(ShiftedCopy):
    """Toy physics adapting on the network's prediction: its state is the mean network entry 0 over the context."""

    adapts = True
    adapts_with_prediction = True
    seen: dict = {}

    def adapt(self, context, mask, predict=None):
        network = predict(context.obs, context.action)  # [B, K, O]
        PredictionFitting.seen["network"] = network
        return network[..., 0].mean(1, keepdim=True)  # [B, 1]

    def complete(self, obs, next_obs, state=None):
        if state is None:
            return next_obs
        value = state[:, 0].view(1, -1, *([1] * (obs.dim() - 3))).expand(obs.shape[:-1])
        return torch.cat([next_obs[..., :3], value[..., None]], -1)


def test_a_physics_adapting_on_predictions_gets_the_networks_mean_without_its_own_state():
    model = _module(known_physics=f"{__name__}:PredictionFitting").dynamics.eval()
    context = Transition(torch.randn(2, 3, OBS), torch.randn(2, 3, ACT), torch.randn(2, 3, OBS), torch.zeros(2, 3),
                         torch.zeros(2, 3, dtype=torch.bool))  # fmt: skip
    with torch.no_grad():
        adapted = model.adapt(context)
        state = adapted.physics_state
        adapted.physics_state = None
        expected = adapted(context.obs.expand(2, 2, 3, OBS), context.action.expand(2, 2, 3, ACT)).mean.mean(0)
    assert torch.allclose(PredictionFitting.seen["network"], expected)
    assert torch.allclose(state[:, 0], expected[..., 0].mean(1))


def test_physics_that_uses_the_action_gets_it_when_predicting_and_in_the_loss():
    module = _module(known_physics=f"{__name__}:ActionDriven")
    model: MetaDynamicsModel = module.dynamics
    g = torch.Generator().manual_seed(2)
    obs, action = torch.randn(8, 5, OBS, generator=g), torch.randn(8, 5, ACT, generator=g)
    next_obs = obs.clone()
    next_obs[..., 3] = obs[..., 0] + 0.5 * action[..., 0]  # the offset's true value: 0.5
    target = Transition(obs, action, next_obs, torch.zeros(8, 5), torch.zeros(8, 5, dtype=torch.bool))
    batch = MetaBatch(context=_empty_context(8), target=target, task=torch.zeros(8, 0), context_mask=None)
    optimiser = module.configure_optimizers()
    for _ in range(300):
        optimiser.zero_grad()
        model.loss(batch)[0].backward()
        optimiser.step()
    assert abs(float(model.physics.offset.detach()) - 0.5) < 0.02
    with torch.no_grad():
        got = model.adapt(_empty_context())(obs[None, :1].expand(2, 1, 5, OBS), action[None, :1].expand(2, 1, 5, ACT))
    assert torch.allclose(got.mean[..., 3], next_obs[None, :1, :, 3].expand(2, 1, 5), atol=0.02)
