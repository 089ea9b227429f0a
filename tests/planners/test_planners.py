"""Planner contract on the 2-D linear-quadratic system (see conftest.py), parametrised over every planner."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mbmeta.planners import (
    INVALID_RETURN,
    PLANNERS,
    CEMPlanner,
    ICEMPlanner,
    MPPIPlanner,
    Planner,
    RandomShootingPlanner,
    make_planner,
)

LOW, HIGH = [-3.0, -3.0], [3.0, 3.0]
SETTINGS = {
    "random_shooting": dict(population=400),
    "cem": dict(population=300, elites=30, iterations=8),
    "icem": dict(population=300, elites=30, iterations=8),
    "mppi": dict(population=300, iterations=8, temperature=0.2, noise_std=0.1),
}
ITERATIVE = ["cem", "icem", "mppi"]


def build(name: str, low=LOW, high=HIGH, **overrides) -> Planner:
    return make_planner(name, low=low, high=high, **{**SETTINGS[name], **overrides})


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(PLANNERS))
def test_plan_beats_a_bad_warm_start(name, make_problem):
    problem = make_problem(batch=3)
    init = torch.full((3, 8, 2), 1.5)
    result = build(name).plan(problem, init, generator=gen())
    assert (problem.cost(result.actions[:, None]) < problem.cost(init[:, None])).all()


@pytest.mark.parametrize("name", ITERATIVE)
def test_population_improves_over_iterations(name, make_problem):
    problem = make_problem(batch=2)
    build(name).plan(problem, torch.zeros(2, 8, 2), generator=gen())
    first, last = problem.calls[0].mean(dim=1), problem.calls[-1].mean(dim=1)
    assert len(problem.calls) == SETTINGS[name]["iterations"]
    assert (last > first).all()


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("name", ITERATIVE)
def test_ends_near_the_known_optimum(name, batch, make_problem):
    problem = make_problem(batch=batch)
    optimum, best_cost = problem.optimum()
    assert optimum.abs().max() < 2.0, "test problem: bounds must not bind at the optimum"
    result = build(name).plan(problem, torch.zeros(batch, 8, 2), generator=gen())
    assert result.actions.shape == (batch, 8, 2)
    assert result.returns.shape == (batch,)
    cost = problem.cost(result.actions[:, None])[:, 0]
    # Within 5% of the optimal cost (the zero sequence is 25-70% worse than optimal on this problem).
    assert (cost <= 1.05 * best_cost).all(), (cost / best_cost).tolist()


@pytest.mark.parametrize("name", list(PLANNERS))
def test_deterministic_given_a_generator(name, make_problem):
    planner = build(name)
    init = torch.zeros(2, 8, 2)
    a = planner.plan(make_problem(batch=2), init, generator=gen(3))
    b = planner.plan(make_problem(batch=2), init, generator=gen(3))
    c = planner.plan(make_problem(batch=2), torch.full((2, 8, 2), 2.9), generator=gen(4))
    assert torch.equal(a.actions, b.actions) and torch.equal(a.returns, b.returns)
    assert not torch.equal(a.actions, c.actions)


@pytest.mark.parametrize("name", list(PLANNERS))
def test_init_is_not_mutated(name, make_problem):
    init = torch.full((2, 8, 2), 5.0)  # out of bounds: the planner clips a copy
    init[0, 0, 0] = float("nan")
    before = init.clone()
    result = build(name).plan(make_problem(batch=2), init, generator=gen())
    assert torch.equal(init.isnan(), before.isnan())
    assert torch.equal(init.nan_to_num(), before.nan_to_num())
    assert torch.isfinite(result.actions).all()


@pytest.mark.parametrize("name", list(PLANNERS))
def test_rows_counts_evaluated_sequences(name, make_problem):
    problem = make_problem(batch=2)
    result = build(name).plan(problem, torch.zeros(2, 8, 2), generator=gen())
    assert result.rows == sum(call.shape[1] for call in problem.calls)


def test_icem_population_shrinks():
    planner = ICEMPlanner(LOW, HIGH, population=300, elites=30, iterations=5, decay=1.5)
    sizes = planner.population_sizes()
    assert sizes[0] == 300 and all(a > b for a, b in zip(sizes, sizes[1:-1], strict=False))
    assert min(sizes) >= 60


def test_icem_carry_from_the_previous_step_is_used(make_problem):
    problem = make_problem(batch=2)
    optimum, best_cost = problem.optimum()
    planner = ICEMPlanner(LOW, HIGH, population=40, elites=8, iterations=1, keep_elites=0.5)
    carry = torch.cat([optimum[:, None].float(), torch.zeros(2, 7, 8, 2)], dim=1)
    _, elites = planner.plan_with_carry(problem, torch.zeros(2, 8, 2), generator=gen(), carry=carry)
    planner_best = ICEMPlanner(LOW, HIGH, population=40, elites=8, iterations=1, keep_elites=0.5, return_best=True)
    best = planner_best.plan_with_carry(problem, torch.zeros(2, 8, 2), generator=gen(), carry=carry)[0]
    without = planner_best.plan(problem, torch.zeros(2, 8, 2), generator=gen())
    cost = lambda r: problem.cost(r.actions[:, None])[:, 0]  # noqa: E731
    assert torch.allclose(cost(best), best_cost, rtol=1e-4)  # the carried optimum is the best sample
    assert (cost(without) > 1.02 * best_cost).all()  # which one iteration of 40 samples does not find alone
    assert elites.shape == (2, 8, 8, 2)
    elite_returns = -problem.cost(elites)
    assert (elite_returns[:, :-1] >= elite_returns[:, 1:] - 1e-4).all(), "elites are returned best first"


def test_carry_is_ignored_by_planners_without_it(make_problem):
    planner = build("cem")
    result, carry_out = planner.plan_with_carry(
        make_problem(batch=1), torch.zeros(1, 8, 2), generator=gen(), carry=torch.zeros(1, 3, 8, 2)
    )
    assert carry_out is None and result.actions.shape == (1, 8, 2)


def test_bad_carry_shape_names_the_expected_shape(make_problem):
    with pytest.raises(ValueError, match=r"carry must have shape \[B, C, H, A\] = \[1, C, 8, 2\]"):
        build("icem").plan_with_carry(make_problem(), torch.zeros(1, 8, 2), carry=torch.zeros(1, 3, 5, 2))


def _nan_on_positive_first_action(actions: torch.Tensor) -> torch.Tensor:
    """Target (0.5, ...) but NaN/inf wherever the first action's first component is > 0.25."""
    returns = -((actions - 0.5) ** 2).sum(dim=(2, 3))
    bad = actions[:, :, 0, 0] > 0.25
    poison = torch.where(actions[:, :, 0, 1] > 0, float("nan"), float("inf"))
    return torch.where(bad, poison, returns)


@pytest.mark.parametrize("name", list(PLANNERS))
def test_non_finite_returns_never_win(name):
    result = build(name).plan(_nan_on_positive_first_action, torch.zeros(3, 4, 2), generator=gen())
    assert torch.isfinite(result.actions).all() and torch.isfinite(result.returns).all()
    assert (result.returns > INVALID_RETURN).all()
    assert (result.actions[:, 0, 0] <= 0.25 + 1e-6).all(), "a candidate with a NaN/inf return was chosen"


@pytest.mark.parametrize("name", list(PLANNERS))
def test_all_returns_non_finite_gives_in_bounds_actions_and_minus_inf(name):
    def broken(actions):
        return torch.full(actions.shape[:2], float("nan"))

    result = build(name).plan(broken, torch.zeros(2, 4, 2), generator=gen())
    assert torch.isfinite(result.actions).all()
    assert (result.actions >= -3).all() and (result.actions <= 3).all()
    assert torch.equal(result.returns, torch.full((2,), float("-inf")))


@pytest.mark.parametrize("name", list(PLANNERS))
def test_objective_with_wrong_shape_is_rejected(name):
    with pytest.raises(ValueError, match=r"objective must return shape \[B, N\]"):
        build(name).plan(lambda a: a.sum(dim=(2, 3))[:, :1], torch.zeros(2, 4, 2))


@pytest.mark.parametrize("name", list(PLANNERS))
@pytest.mark.parametrize(
    "init_shape, message",
    [((2, 0, 2), "horizon"), ((2, 4, 3), r"init must have shape \[B, H, A\] with A=2"), ((4, 2), "init must have")],
)
def test_bad_init_raises(name, init_shape, message):
    with pytest.raises(ValueError, match=message):
        build(name).plan(lambda a: a.sum(dim=(2, 3)), torch.zeros(init_shape))


@pytest.mark.parametrize("name", list(PLANNERS))
def test_zero_population_raises(name):
    with pytest.raises(ValueError, match="population must be > 0"):
        build(name, population=0)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (CEMPlanner, dict(population=10, elites=11), "elites must be <= population"),
        (CEMPlanner, dict(iterations=0), "iterations must be > 0"),
        (CEMPlanner, dict(alpha=1.0), "alpha must be in"),
        (ICEMPlanner, dict(decay=0.5), "decay must be >= 1"),
        (ICEMPlanner, dict(beta=-1.0), "beta must be >= 0"),
        (ICEMPlanner, dict(keep_elites=1.5), "keep_elites must be in"),
        (MPPIPlanner, dict(temperature=0.0), "temperature must be > 0"),
        (MPPIPlanner, dict(noise_std=-1.0), "noise_std must be > 0"),
        (RandomShootingPlanner, dict(low=[4.0, 0.0]), "need low < high"),
        (RandomShootingPlanner, dict(low=[0.0]), "same shape"),
        (RandomShootingPlanner, dict(low=[float("nan"), 0.0]), "low must be finite"),
    ],
)
def test_bad_settings_raise(cls, kwargs, message):
    args = {"low": LOW, "high": HIGH, **kwargs}
    with pytest.raises(ValueError, match=message):
        cls(**args)


def test_make_planner_names():
    assert isinstance(make_planner("RS", low=LOW, high=HIGH), RandomShootingPlanner)
    assert isinstance(make_planner("ICEMPlanner", low=LOW, high=HIGH), ICEMPlanner)
    with pytest.raises(ValueError, match=r"unknown planner 'pso'; valid names are \['cem', 'icem', 'mppi', "):
        make_planner("pso", low=LOW, high=HIGH)


@st.composite
def boxes(draw):
    action_dim = draw(st.integers(1, 3))
    low = draw(st.lists(st.floats(-10, 10), min_size=action_dim, max_size=action_dim))
    width = draw(st.lists(st.floats(1e-3, 20), min_size=action_dim, max_size=action_dim))
    return low, [lo + w for lo, w in zip(low, width, strict=True)]


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(PLANNERS)),
    box=boxes(),
    batch=st.integers(1, 4),
    horizon=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_actions_stay_in_bounds_for_any_box_and_batch(name, box, batch, horizon, seed):
    low, high = box
    extra = {"elites": 4} if name in ("cem", "icem") else {}
    planner = make_planner(name, low=low, high=high, population=16, **extra)
    target = torch.tensor(high) + 5.0  # optimum outside the box: pushes the planners against the bounds

    def objective(actions):
        return -((actions - target) ** 2).sum(dim=(2, 3))

    init = torch.randn((batch, horizon, len(low)), generator=gen(seed)) * 30
    result = planner.plan(objective, init, generator=gen(seed))
    assert result.actions.shape == (batch, horizon, len(low))
    assert result.returns.shape == (batch,)
    lo, hi = torch.tensor(low), torch.tensor(high)
    assert (result.actions >= lo).all() and (result.actions <= hi).all()
    assert math.isfinite(float(result.returns.sum()))


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_a_mean_of_in_bounds_candidates_never_rounds_past_a_narrow_bound(name):
    """Hypothesis found iCEM's elite mean 1 ulp above ``high`` on the box [-4, -3.999] (batch 3, horizon 3)."""
    low, high = [-4.0], [-3.999]
    extra = {"elites": 4} if name in ("cem", "icem") else {}
    planner = make_planner(name, low=low, high=high, population=16, **extra)
    target = torch.tensor(high) + 5.0

    def objective(actions):
        return -((actions - target) ** 2).sum(dim=(2, 3))

    for seed in (3408, 0, 1, 2):
        init = torch.randn((3, 3, 1), generator=gen(seed)) * 30
        actions = planner.plan(objective, init, generator=gen(seed)).actions
        assert (actions >= torch.tensor(low)).all() and (actions <= torch.tensor(high)).all(), (seed, actions)
