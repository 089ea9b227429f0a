"""Property-based tests (hypothesis) of the parts that touch arbitrary numbers: planners, buffer, normaliser."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models.normaliser import Normaliser
from mbmeta.planners import PLANNERS, make_planner

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(PLANNERS)),
    bad_fraction=st.floats(0.0, 1.0),
    bad_value=st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    half_width=st.floats(0.01, 10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_planners_return_finite_in_bounds_actions_whatever_the_objective_returns(
    name, bad_fraction, bad_value, half_width, seed
):
    # A model that predicts NaN/inf for some (or all) candidates must never yield NaN or out-of-bounds actions.
    low, high = [-half_width, 0.0], [half_width, 2 * half_width]
    extra = {"elites": 4} if name in ("cem", "icem") else {}
    planner = make_planner(name, low=low, high=high, population=16, **extra)
    noise = torch.Generator().manual_seed(seed)

    def objective(actions):  # [B, N, H, A] -> [B, N]
        returns = -(actions**2).sum(dim=(-1, -2))
        bad = torch.rand(returns.shape, generator=noise) < bad_fraction
        return torch.where(bad, torch.full_like(returns, bad_value), returns)

    init = torch.zeros(3, 4, 2)
    result = planner.plan(objective, init, generator=torch.Generator().manual_seed(seed))
    actions = result.actions
    assert actions.shape == (3, 4, 2)
    assert torch.isfinite(actions).all()
    assert (actions >= torch.tensor(low)).all() and (actions <= torch.tensor(high)).all()


@st.composite
def episodes(draw):
    obs_dim, action_dim = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, 10), min_size=1, max_size=5))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    out = []
    for length in lengths:
        obs = draw(hnp.arrays(np.float32, (length + 1, obs_dim), elements=finite)) * np.float32(scale)
        action = draw(hnp.arrays(np.float32, (length, action_dim), elements=finite))
        reward = draw(hnp.arrays(np.float32, (length,), elements=finite))
        out.append((obs, action, reward, draw(st.booleans())))
    return out


def _buffer(eps):
    buffer = EpisodeBuffer()
    for obs, action, reward, terminated in eps:
        last = np.zeros(len(action), bool)
        last[-1] = True
        never = np.zeros(len(action), bool)
        term, trunc = (last, never) if terminated else (never, last)
        buffer.add_episode(obs[:-1], action, reward, obs[1:], term, trunc, task={"mass": 1.0})
    return buffer


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(eps=episodes())
def test_buffer_save_load_round_trip_is_exact(tmp_path_factory, eps):
    buffer = _buffer(eps)
    path = buffer.save(tmp_path_factory.mktemp("buf") / "b.npz")
    loaded = EpisodeBuffer.load(path)
    assert loaded.num_episodes == len(eps)
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        assert np.array_equal(loaded.field(name), buffer.field(name))
    for e, (obs, action, _, _) in enumerate(eps):
        ep = loaded.episode(e)
        assert np.array_equal(ep["obs"], obs[:-1]) and np.array_equal(ep["action"], action)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(eps=episodes())
def test_normaliser_fitted_on_any_buffer_is_finite_and_invertible(eps):
    buffer = _buffer(eps)
    normaliser = Normaliser(buffer.obs_dim, buffer.action_dim)
    normaliser.fit(buffer.statistics())
    obs = torch.as_tensor(buffer.obs)
    delta = torch.as_tensor(buffer.next_obs) - obs
    z_obs, z_delta = normaliser.normalise_obs(obs), normaliser.normalise_delta(delta)
    assert torch.isfinite(z_obs).all() and torch.isfinite(z_delta).all()
    assert torch.isfinite(normaliser.normalise_action(torch.as_tensor(buffer.action))).all()
    assert torch.isfinite(normaliser.normalise_reward(torch.as_tensor(buffer.reward))).all()
    scale = obs.abs().amax().clamp_min(1.0)
    assert torch.allclose(normaliser.denormalise_obs(z_obs), obs, atol=1e-4 * scale, rtol=1e-4)
    assert torch.allclose(normaliser.denormalise_delta(z_delta), delta, atol=1e-3 * scale, rtol=1e-4)
    # Standardised: every non-constant feature has (close to) zero mean and unit spread.
    varying = obs.std(dim=0, unbiased=False) > 1e-3 * scale
    if len(obs) > 1 and varying.any():
        assert torch.allclose(z_obs[:, varying].mean(dim=0), torch.zeros(int(varying.sum())), atol=1e-2)
