"""`evaluation/episodes.py`: which tasks are evaluated, and the episode records of a closed-loop evaluation."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluate_agent, evaluate_returns, evaluation_tasks

SHORT = {"max_episode_steps": 40}  # shorter episodes than the family's 200: the same code, a fifth of the steps


def test_a_discrete_split_gives_its_whole_grid_once_in_a_fixed_order(pendulum):
    tasks = evaluation_tasks(pendulum, "test")
    expected = {
        (m, length)
        for region in pendulum.test
        for m, length in itertools.product(region["mass"].values, region["length"].values)
    }
    assert len(tasks) == len(expected) == 16
    assert {(t.as_dict()["mass"], t.as_dict()["length"]) for t in tasks} == expected
    assert all(pendulum.in_split(t, "test") for t in tasks)
    assert evaluation_tasks(pendulum, "test", seed=5) == tasks  # no randomness in a grid
    train = evaluation_tasks(pendulum, "train")
    assert len(train) == 11 * 11 and all(pendulum.in_split(t, "train") for t in train)


def test_the_even_design_subsamples_a_grid_evenly_from_first_to_last(pendulum):
    grid = evaluation_tasks(pendulum, "test")
    picked = evaluation_tasks(pendulum, "test", count=4, design="even")
    assert picked == [grid[0], grid[5], grid[10], grid[15]]
    for design in ("even", "balanced"):
        assert evaluation_tasks(pendulum, "test", count=16, design=design) == grid
        assert evaluation_tasks(pendulum, "test", count=40, design=design) == grid  # never more than the grid


def _value_counts(tasks, name):
    return Counter(t.as_dict()[name] for t in tasks)


def test_the_balanced_design_gives_each_value_equally_often_and_unties_the_parameters():
    juggler = get_family("juggler_balance_servo")  # 4 parameters x 4 values: 256 test tasks
    names = juggler.parameter_names
    even = evaluation_tasks(juggler, "test", count=8, design="even")
    balanced = evaluation_tasks(juggler, "test", count=8)  # balanced is the default
    assert len(balanced) == len(set(balanced)) == 8 and all(juggler.in_split(t, "test") for t in balanced)
    grid = evaluation_tasks(juggler, "test")
    assert [grid.index(t) for t in balanced] == sorted(grid.index(t) for t in balanced)  # grid order
    for name in names:
        assert sorted(_value_counts(balanced, name).values()) == [2, 2, 2, 2]

    def codes(tasks):
        return np.array([[sorted({g.as_dict()[n] for g in grid}).index(t.as_dict()[n]) for n in names] for t in tasks])

    def worst_correlation(tasks):
        c = codes(tasks).astype(float)
        return max(abs(np.corrcoef(c[:, a], c[:, b])[0, 1]) for a, b in itertools.combinations(range(len(names)), 2))

    assert worst_correlation(even) > 0.9  # the flaw: evenly spaced rows tie the parameters together
    assert worst_correlation(balanced) < 0.5
    assert evaluation_tasks(juggler, "test", count=8, seed=0) == balanced  # deterministic by seed
    assert evaluation_tasks(juggler, "test", count=8, seed=1) != balanced


def test_the_balanced_design_works_on_a_union_of_regions_and_fewer_tasks_than_values():
    family = get_family("cadm_pendulum")  # the test split is a union of regions (moderate and extreme conditions)
    grid = evaluation_tasks(family, "test")
    picked = evaluation_tasks(family, "test", count=3, seed=2)
    assert len(set(picked)) == 3 and set(picked) <= set(grid)


def test_an_unknown_design_is_refused_in_one_line(pendulum):
    with pytest.raises(ValueError, match="task design must be one of balanced, even, got 'random'"):
        evaluation_tasks(pendulum, "test", count=4, design="random")


def test_a_split_with_intervals_is_sampled_deterministically_by_seed():
    cartpole = get_family("cartpole")  # its test split is made of intervals
    tasks = evaluation_tasks(cartpole, "test", count=5, seed=3)
    assert len(tasks) == 5 and all(cartpole.in_split(t, "test") for t in tasks)
    assert evaluation_tasks(cartpole, "test", count=5, seed=3) == tasks
    assert evaluation_tasks(cartpole, "test", count=5, seed=4) != tasks
    assert len(evaluation_tasks(cartpole, "test")) == 8  # the default count of a continuous split


def test_evaluate_agent_records_every_task_and_episode(pendulum, pendulum_buffer, make_tiny_module, fast_agent):
    module = make_tiny_module(pendulum_buffer)
    tasks = evaluation_tasks(pendulum, "test", count=2)
    result = evaluate_agent(
        module, pendulum, tasks, episodes_per_task=2, agent=fast_agent, num_envs=4, seed=7, env_kwargs=SHORT
    )
    records = result.records
    assert [(r.task_id, r.seed) for r in records] == [(0, 7), (0, 8), (1, 7), (1, 8)]
    assert all(r.task == tasks[r.task_id].as_dict() for r in records)
    assert all(r.method == "context" for r in records)  # the model's adaptation names it by default
    assert all(r.length == SHORT["max_episode_steps"] and not r.terminated for r in records)
    assert all(np.isfinite(r.episode_return) and isinstance(r.success, bool) for r in records)
    stats = result.plan_stats
    for key in ("plan/ms_per_call", "plan/sequences_per_env_step", "plan/planned_return_mean"):
        assert key in stats, sorted(stats)
    per_step = sum(r.episode_return for r in records) / sum(r.length for r in records)
    assert stats["plan/realised_return_mean"] == pytest.approx(fast_agent.horizon * per_step)


def test_evaluate_returns_are_the_records_of_evaluate_agent_under_a_given_label(
    pendulum, pendulum_buffer, make_tiny_module, fast_agent
):
    module = make_tiny_module(pendulum_buffer, adaptation="none")
    tasks = evaluation_tasks(pendulum, "test", count=2)
    records = evaluate_returns(module, pendulum, tasks, method="baseline", agent=fast_agent, seed=1, env_kwargs=SHORT)
    assert [r.method for r in records] == ["baseline", "baseline"]
    again = evaluate_agent(module, pendulum, tasks, method="baseline", agent=fast_agent, seed=1, env_kwargs=SHORT)
    assert records == again.records  # same seeds, same episodes


def test_an_oracle_model_is_given_each_episodes_true_task(pendulum, pendulum_buffer, make_tiny_module, fast_agent):
    module = make_tiny_module(pendulum_buffer, adaptation="oracle")
    seen = []
    adapt = module.dynamics.adapt

    def recording_adapt(context, mask=None, task=None):
        seen.append(None if task is None else task.clone())
        return adapt(context, mask, task)

    module.dynamics.adapt = recording_adapt
    tasks = evaluation_tasks(pendulum, "test", count=2)
    evaluate_agent(module, pendulum, tasks, agent=fast_agent, num_envs=2, env_kwargs=SHORT)
    assert seen and all(task is not None for task in seen)
    expected = torch.tensor([[t.as_dict()[n] for n in pendulum.parameter_names] for t in tasks])
    rows = torch.cat(seen).unique(dim=0)
    torch.testing.assert_close(rows, expected.to(rows.dtype).unique(dim=0))
