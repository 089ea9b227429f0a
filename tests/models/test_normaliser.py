import pytest
import torch

from mbmeta.models.normaliser import REQUIRED_KEYS, Normaliser, transition_statistics
from mbmeta.types import Transition


def random_transitions(g, shape=(6, 10), o=3, a=2):
    obs = torch.randn(*shape, o, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + 2.0
    return Transition(
        obs=obs,
        action=torch.rand(*shape, a, generator=g) * 4 - 1,
        next_obs=obs + 0.3 * torch.randn(*shape, o, generator=g),
        reward=torch.randn(*shape, generator=g) * 3 + 1,
        terminated=torch.zeros(*shape, dtype=torch.bool),
    )


def test_unfitted_is_identity_and_flag_false():
    n = Normaliser(3, 2, 1)
    x = torch.randn(4, 3)
    assert not bool(n.fitted)
    torch.testing.assert_close(n.normalise_obs(x), x)
    torch.testing.assert_close(n.normalise_task(torch.ones(4, 1)), torch.ones(4, 1))


def test_round_trip_and_standardisation():
    g = torch.Generator().manual_seed(0)
    t = random_transitions(g)
    task = torch.rand(6, 10, 1, generator=g)
    n = Normaliser(3, 2, 1)
    n.fit(transition_statistics(t, task))
    assert bool(n.fitted)
    delta = t.next_obs - t.obs
    for fwd, inv, x in [
        (n.normalise_obs, n.denormalise_obs, t.obs),
        (n.normalise_delta, n.denormalise_delta, delta),
        (n.normalise_reward, n.denormalise_reward, t.reward),
    ]:
        torch.testing.assert_close(inv(fwd(x)), x, atol=1e-5, rtol=1e-5)
    z = n.normalise_obs(t.obs).reshape(-1, 3)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(3), atol=1e-5, rtol=0)
    assert n.normalise_action(t.action).reshape(-1, 2).std(0, correction=0).sub(1).abs().max() < 1e-5
    assert n.normalise_task(task).reshape(-1).std(correction=0).sub(1).abs() < 1e-5


def test_constant_dimension_passes_through_unscaled():
    g = torch.Generator().manual_seed(1)
    t = random_transitions(g)
    t = t._replace(obs=t.obs.clone())
    t.obs[..., 0] = 7.0  # a constant observation dimension
    stats = transition_statistics(t)
    n = Normaliser(3, 2)
    n.fit(stats)
    assert n.obs_std[0] == 1.0
    assert torch.isfinite(n.normalise_obs(t.obs + 1.0)).all()


def test_statistics_live_in_state_dict():
    g = torch.Generator().manual_seed(2)
    a = Normaliser(3, 2)
    a.fit(transition_statistics(random_transitions(g)))
    state = a.state_dict()
    assert "fitted" in state and all(k in state for k in REQUIRED_KEYS)
    b = Normaliser(3, 2)
    b.load_state_dict(state)
    assert bool(b.fitted)
    x = torch.randn(5, 3, generator=g)
    torch.testing.assert_close(a.normalise_obs(x), b.normalise_obs(x))


def test_fit_rejects_bad_statistics():
    g = torch.Generator().manual_seed(3)
    stats = transition_statistics(random_transitions(g))
    n = Normaliser(3, 2)
    with pytest.raises(KeyError, match="delta_std"):
        n.fit({k: v for k, v in stats.items() if k != "delta_std"})
    with pytest.raises(ValueError, match=r"obs_mean has shape \(4,\), expected \(3,\)"):
        n.fit({**stats, "obs_mean": torch.zeros(4)})
    with pytest.raises(ValueError, match="non-finite"):
        n.fit({**stats, "reward_std": torch.tensor(float("nan"))})
    assert not bool(n.fitted)
