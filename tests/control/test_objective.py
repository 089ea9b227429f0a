"""RolloutObjective on hand-made adapted models whose rollouts are known exactly."""

from __future__ import annotations

import pytest
import torch

from mbmeta.control.objective import RolloutObjective
from mbmeta.planners import CEMPlanner
from mbmeta.types import AdaptedDynamics, Prediction


class ShiftModel:
    """E members: member e predicts next = A x + B u + offsets[e], variance `var`; counts calls, records inputs."""

    def __init__(self, offsets, A=None, Bm=None, var=0.0, learned_reward=False, nan_above=None):
        self.offsets = torch.as_tensor(offsets, dtype=torch.float32)  # [E, O]
        self.ensemble_size = self.offsets.shape[0]
        obs_dim = self.offsets.shape[1]
        self.A = torch.eye(obs_dim) if A is None else A
        self.Bm = torch.zeros(obs_dim, 2) if Bm is None else Bm
        self.var = var
        self.learned_reward = learned_reward
        self.nan_above = nan_above  # obs[..., 0] above this -> NaN prediction (a diverging model)
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, obs, action):
        assert obs.shape[0] == self.ensemble_size and obs.shape[:-1] == action.shape[:-1]
        self.calls.append((obs.clone(), action.clone()))
        offsets = self.offsets.reshape(self.ensemble_size, *([1] * (obs.ndim - 2)), -1)
        mean = obs @ self.A.T + action @ self.Bm.T + offsets
        if self.nan_above is not None:
            mean = torch.where(obs[..., :1] > self.nan_above, float("nan"), mean)
        reward = -(mean**2).sum(-1) if self.learned_reward else None
        return Prediction(mean, torch.full_like(mean, self.var), reward)


def first_coordinate(obs, action, next_obs):
    return next_obs[..., 0]


def first_squared(obs, action, next_obs):
    return next_obs[..., 0] ** 2


def quadratic(obs, action, next_obs):
    return -(next_obs**2).sum(-1) - 0.1 * (action**2).sum(-1)


A = torch.tensor([[1.0, 0.1], [-0.1, 0.95]])
BM = torch.tensor([[0.1, 0.0], [0.05, 0.1]])


def exact_returns(start, actions):
    """The linear system's return for [B, N, H, 2] actions, by a plain loop."""
    x = start[:, None].expand(actions.shape[0], actions.shape[1], 2)
    total = torch.zeros(actions.shape[:2])
    for t in range(actions.shape[2]):
        nxt = x @ A.T + actions[:, :, t] @ BM.T
        total = total + quadratic(x, actions[:, :, t], nxt)
        x = nxt
    return total


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_hand_made_model_satisfies_the_protocol():
    assert isinstance(ShiftModel([[0.0, 0.0]]), AdaptedDynamics)


@pytest.mark.parametrize(
    "propagation, particles, members", [("expectation", 1, 3), ("tsinf", 6, 3), ("ts1", 4, 3), ("ts1", 1, 3)]
)
def test_identical_members_reproduce_the_exact_return_with_one_call_per_step(propagation, particles, members):
    model = ShiftModel(torch.zeros(members, 2), A=A, Bm=BM)
    start = torch.tensor([[1.0, -0.5], [0.3, 0.8]])
    actions = torch.randn((2, 5, 7, 2), generator=gen())  # N=5: with P=1 the 5 rows do not split evenly over 3
    objective = RolloutObjective(model, start, quadratic, propagation=propagation, particles=particles, generator=gen())
    returns = objective(actions)
    assert returns.shape == (2, 5)
    assert len(model.calls) == 7, "exactly one model call per time step"
    torch.testing.assert_close(returns, exact_returns(start, actions), rtol=1e-5, atol=1e-5)


def test_tsinf_rows_are_laid_out_per_member():
    model = ShiftModel([[1.0, 0.0], [-1.0, 0.0]])
    objective = RolloutObjective(model, torch.zeros(3, 2), first_coordinate, particles=4, generator=gen())
    objective(torch.zeros(3, 10, 5, 2))
    for t, (obs, _) in enumerate(model.calls):
        assert obs.shape == (2, 3, 10, 2, 2), "[E, B, N, P/E, O]: each member computes only its own rows"
        assert torch.all(obs[0, ..., 0] == t) and torch.all(obs[1, ..., 0] == -t), "a particle kept its member"


def test_tsinf_keeps_members_and_ts1_mixes_them():
    horizon = 6
    sum_t2 = sum(t * t for t in range(1, horizon + 1))  # each tsinf particle walks x_t = ±t
    tsinf = RolloutObjective(ShiftModel([[1.0, 0.0], [-1.0, 0.0]]), torch.zeros(1, 2), first_squared, particles=2)
    assert torch.allclose(tsinf(torch.zeros(1, 50, horizon, 2)), torch.full((1, 50), float(sum_t2)))
    ts1_model = ShiftModel([[1.0, 0.0], [-1.0, 0.0]])
    ts1 = RolloutObjective(ts1_model, torch.zeros(1, 2), first_squared, propagation="ts1", particles=2, generator=gen())
    # ts1: a random ±1 walk per particle, E[x_t²] ≈ t, so the mean return is about sum(t) = 21, far below 91.
    mean = ts1(torch.zeros(1, 500, horizon, 2)).mean()
    assert abs(float(mean) - horizon * (horizon + 1) / 2) < 2.5
    last_obs = ts1_model.calls[-1][0]
    assert last_obs.shape == (2, 1, 500, 2) and (last_obs[0, ..., 0] > 0).any() and (last_obs[0, ..., 0] < 0).any()


def test_expectation_averages_members_and_penalises_disagreement():
    model = ShiftModel([[1.0, 0.0], [-1.0, 0.0]])  # members disagree by ±1 on the first coordinate
    objective = RolloutObjective(
        model, torch.zeros(2, 2), first_coordinate, propagation="expectation", particles=1, disagreement_penalty=0.3
    )
    returns = objective(torch.zeros(2, 4, 5, 2))
    # mean state stays at 0 (reward 0); disagreement = mean over O of Var_E = (1 + 0) / 2 per step.
    torch.testing.assert_close(returns, torch.full((2, 4), -0.3 * 0.5 * 5))


@pytest.mark.parametrize("propagation", ["tsinf", "ts1"])
def test_disagreement_penalty_with_particles_asks_every_member(propagation):
    model = ShiftModel([[1.0, 0.0], [-1.0, 0.0]])
    objective = RolloutObjective(
        model,
        torch.zeros(2, 2),
        lambda o, a, n: torch.zeros(n.shape[:-1]),
        propagation=propagation,
        particles=2,
        disagreement_penalty=2.0,
        generator=gen(),
    )
    returns = objective(torch.zeros(2, 3, 4, 2))
    torch.testing.assert_close(returns, torch.full((2, 3), -2.0 * 0.5 * 4))
    assert len(model.calls) == 4
    assert model.calls[0][0].shape == (2, 2, 3 * 2, 2), "every member sees every row: [E, B, N·P, O]"


def test_tsinf_with_penalty_keeps_member_assignment():
    model = ShiftModel([[1.0, 0.0], [-1.0, 0.0]])
    objective = RolloutObjective(model, torch.zeros(1, 2), first_squared, particles=2, disagreement_penalty=1e-9)
    returns = objective(torch.zeros(1, 5, 6, 2))
    torch.testing.assert_close(returns, torch.full((1, 5), 91.0), rtol=1e-5, atol=1e-5)


def test_rewards_are_masked_after_a_predicted_termination():
    # x' = x + 1 with reward 1 per step; terminated once next x >= 3: steps with next x = 1, 2, 3 count.
    # The model then diverges (NaN beyond x > 3.5): masked rewards must not turn the return into NaN.
    model = ShiftModel([[1.0, 0.0]], nan_above=3.5)

    def terminated(obs, action, next_obs):
        return next_obs[..., 0] >= 3

    for propagation in ("expectation", "tsinf", "ts1"):
        objective = RolloutObjective(
            model,
            torch.zeros(1, 2),
            lambda o, a, n: torch.ones(n.shape[:-1]),
            terminated,
            propagation=propagation,
            particles=1,
            generator=gen(),
        )
        torch.testing.assert_close(objective(torch.zeros(1, 3, 8, 2)), torch.full((1, 3), 3.0))


def test_discount():
    model = ShiftModel([[1.0, 0.0]])
    objective = RolloutObjective(
        model, torch.zeros(1, 2), lambda o, a, n: torch.ones(n.shape[:-1]), particles=1, discount=0.9
    )
    expected = sum(0.9**t for t in range(5))
    torch.testing.assert_close(objective(torch.zeros(1, 2, 5, 2)), torch.full((1, 2), expected))


def test_learned_reward_is_used_without_a_reward_fn():
    model = ShiftModel(torch.zeros(2, 2), A=A, Bm=BM, learned_reward=True)
    start = torch.tensor([[1.0, -0.5]])
    actions = torch.randn((1, 4, 3, 2), generator=gen())
    returns = RolloutObjective(model, start, None, particles=2)(actions)
    expected = exact_returns(start, actions) + 0.1 * (actions**2).sum(dim=(2, 3))  # learned reward has no action term
    torch.testing.assert_close(returns, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no reward"):
        RolloutObjective(ShiftModel(torch.zeros(2, 2)), start, None, particles=2)(actions)


def test_sampling_uses_the_predicted_variance_and_the_generator():
    model = ShiftModel([[0.0, 0.0]], var=0.25)
    objective = lambda seed, sample=True: RolloutObjective(  # noqa: E731
        model, torch.zeros(1, 2), first_squared, particles=1, sample=sample, generator=gen(seed)
    )
    actions = torch.zeros(1, 4000, 1, 2)
    a, b, c = objective(0)(actions), objective(0)(actions), objective(1)(actions)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(float(a.mean()) - 0.25) < 0.03  # E[x'^2] = var
    assert torch.equal(objective(0, sample=False)(actions), torch.zeros(1, 4000))


def test_non_finite_returns_pass_through_and_the_planner_avoids_them():
    # The model diverges wherever the first action component is positive (it drives x[0] above 0.05).
    model = ShiftModel(torch.zeros(2, 2), A=A, Bm=BM, nan_above=0.05)
    objective = RolloutObjective(model, torch.zeros(1, 2), first_coordinate, particles=2, generator=gen())
    probe = torch.zeros(1, 2, 3, 2)
    probe[0, 1, 0, 0] = 1.0
    probe[0, 1, 1, 0] = 1.0
    returns = objective(probe)
    assert torch.isfinite(returns[0, 0]) and not torch.isfinite(returns[0, 1]), "the objective reports NaN as is"
    # first_coordinate rewards pushing x[0] up, but above 0.05 the model returns NaN: the best finite plans stay below.
    result = CEMPlanner([-1.0, -1.0], [1.0, 1.0], population=64, elites=8, iterations=3).plan(
        objective, torch.zeros(1, 3, 2), generator=gen()
    )
    assert torch.isfinite(result.returns).all() and torch.isfinite(result.actions).all()
    assert torch.isfinite(objective(result.actions[:, None])).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(propagation="tsinf", particles=3), "divisible by the ensemble size 2"),
        (dict(propagation="expectation", particles=4), "one particle per candidate"),
        (dict(propagation="ts-inf"), r"valid values are \['ts1', 'tsinf', 'expectation'\]"),
        (dict(particles=0), "particles must be >= 1"),
        (dict(particles=2, discount=0.0), "discount must be in"),
        (dict(particles=2, disagreement_penalty=-1.0), "disagreement_penalty must be >= 0"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RolloutObjective(ShiftModel(torch.zeros(2, 2)), torch.zeros(1, 2), first_coordinate, **kwargs)


def test_actions_of_the_wrong_batch_raise():
    objective = RolloutObjective(ShiftModel(torch.zeros(2, 2)), torch.zeros(3, 2), first_coordinate, particles=2)
    with pytest.raises(ValueError, match=r"actions must have shape \[B, N, H, A\] with B=3"):
        objective(torch.zeros(2, 4, 5, 2))


@pytest.mark.parametrize(
    "propagation, particles, penalty",
    [("expectation", 1, 0.0), ("tsinf", 4, 0.0), ("ts1", 3, 0.0), ("ts1", 2, 1e-9), ("tsinf", 2, 1e-9)],
)
def test_terminal_value_of_the_last_state_is_added_discounted(propagation, particles, penalty):
    # x' = x + 1 for every member: after H = 5 steps every particle is at x = 5; rewards are 1 per step.
    model, seen = ShiftModel([[1.0, 0.0], [1.0, 0.0]]), []

    def value(obs):
        seen.append(obs.clone())
        return 10.0 * obs[..., 0]

    objective = RolloutObjective(
        model,
        torch.zeros(2, 2),
        lambda o, a, n: torch.ones(n.shape[:-1]),
        propagation=propagation,
        particles=particles,
        discount=0.9,
        disagreement_penalty=penalty,
        terminal_value=value,
        generator=gen(),
    )
    returns = objective(torch.zeros(2, 3, 5, 2))
    expected = sum(0.9**t for t in range(5)) + 0.9**5 * 10.0 * 5
    torch.testing.assert_close(returns, torch.full((2, 3), expected), rtol=1e-5, atol=1e-5)
    assert len(seen) == 1 and torch.all(seen[0][..., 0] == 5.0), "the value is asked once, of the last states"


def test_terminal_value_is_not_added_after_a_predicted_termination():
    # As the masking test: terminated once next x >= 3 (returns 3); the value of the diverged states must not count.
    model = ShiftModel([[1.0, 0.0]], nan_above=3.5)
    for propagation in ("expectation", "tsinf", "ts1"):
        objective = RolloutObjective(
            model,
            torch.zeros(1, 2),
            lambda o, a, n: torch.ones(n.shape[:-1]),
            lambda o, a, n: n[..., 0] >= 3,
            propagation=propagation,
            particles=1,
            terminal_value=lambda obs: 100.0 + obs[..., 0],
            generator=gen(),
        )
        torch.testing.assert_close(objective(torch.zeros(1, 3, 8, 2)), torch.full((1, 3), 3.0))
        # A horizon that ends before the termination gets the value: 2 rewards + (100 + 2).
        torch.testing.assert_close(objective(torch.zeros(1, 3, 2, 2)), torch.full((1, 3), 104.0))
