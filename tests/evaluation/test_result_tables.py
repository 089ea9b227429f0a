"""Merged tables: each training seed reduced first, then summarised; differences paired by seed; conditions."""

import math

import pytest

from mbmeta.evaluation.statistics import t_quantile
from mbmeta.evaluation.tables import (
    OVERALL,
    condition_table,
    conditions_for,
    difference_table,
    method_table,
    metric_info,
    named_condition,
    paired_differences,
    seed_values,
    summarise_methods,
)


def episode(method, mass, value, seed=0, length=100, success=None, task_id=None):
    task_id = {0.2: 0, 0.5: 1, 1.5: 2}[mass] if task_id is None else task_id
    return {"method": method, "task_id": task_id, "task": {"mass": mass}, "seed": seed, "episode_return": value,
            "length": length, "terminated": False, "success": success}  # fmt: skip


@pytest.fixture
def episodes():
    # none: seed 0 has two evaluation seeds' episodes (pooled), seed 1 one; context: seeds 0, 1 and 2
    return {
        "none": {
            0: [episode("none", 0.2, 10.0), episode("none", 1.5, 30.0), episode("none", 0.2, 14.0, seed=1),
                episode("none", 1.5, 26.0, seed=1)],
            1: [episode("none", 0.2, 0.0), episode("none", 1.5, 40.0)],
        },
        "context": {
            0: [episode("context", 0.2, 20.0), episode("context", 1.5, 40.0)],
            1: [episode("context", 0.2, 30.0), episode("context", 1.5, 50.0)],
            2: [episode("context", 0.2, 99.0), episode("context", 1.5, 99.0)],
        },
    }  # fmt: skip


def test_each_seed_is_the_mean_of_all_its_episodes(episodes):
    conditions = conditions_for(episodes, {"light": {"mass": [0.2, 0.5]}})
    overall, light = conditions[0], conditions[1]
    assert seed_values(episodes["none"], "episode_return", overall) == {0: 20.0, 1: 20.0}
    assert seed_values(episodes["none"], "episode_return", light) == {0: 12.0, 1: 0.0}


def test_conditions_are_overall_then_named_then_each_task_in_task_order(episodes):
    names = [c.name for c in conditions_for(episodes, {"heavy": {"mass": [1.5]}})]
    assert names == [OVERALL, "heavy", "mass=0.2", "mass=1.5"]


def test_named_condition_needs_every_listed_parameter():
    both = named_condition("c", {"mass": [0.2], "length": [1.6, 1.8]})
    assert both.contains({"mass": 0.2, "length": 1.8})
    assert not both.contains({"mass": 0.2, "length": 1.3})
    assert not both.contains({"mass": 0.2})


def test_method_summary_across_seeds(episodes):
    rows = summarise_methods(episodes, "episode_return", conditions_for(episodes)[:1])
    context = next(r for r in rows if r.method == "context")
    # seed means 30, 40, 99: mean 56.33, sd over seeds with n - 1
    values = [30.0, 40.0, 99.0]
    mean = sum(values) / 3
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / 2) / math.sqrt(3)
    assert context.per_seed == {0: 30.0, 1: 40.0, 2: 99.0}
    assert context.estimate.mean == pytest.approx(mean)
    assert context.estimate.se == pytest.approx(se)
    assert context.estimate.high == pytest.approx(mean + t_quantile(0.975, 2) * se)


def test_paired_differences_use_only_the_seeds_both_methods_have(episodes):
    diff = paired_differences(episodes, [("context", "none")], "episode_return", conditions_for(episodes)[:1])[0]
    assert diff.per_seed == {0: 10.0, 1: 20.0}  # seed 2 (context only) is not paired
    assert diff.estimate.n == 2 and diff.estimate.mean == pytest.approx(15.0)
    assert diff.estimate.se == pytest.approx(5.0)
    assert diff.verdict == "not established"  # 15 ± 12.71 * 5 crosses zero
    assert diff.name == "context − none"


def test_a_comparison_with_an_unknown_method_is_an_error(episodes):
    with pytest.raises(ValueError, match="oracle"):
        paired_differences(episodes, [("oracle", "none")], "episode_return", conditions_for(episodes)[:1])


def test_other_metrics_and_missing_success():
    episodes = [episode("m", 0.2, 1.0, length=30, success=True), episode("m", 1.5, 1.0, length=50, success=None)]
    data = {"m": {0: episodes}}
    overall = conditions_for(data)[0]
    assert seed_values(data["m"], "length", overall) == {0: 40.0}
    assert seed_values(data["m"], "success", overall) == {0: 1.0}  # undefined success is left out, not counted as 0
    with pytest.raises(ValueError, match="unknown metric"):
        seed_values(data["m"], "reward", overall)


def test_a_family_measure_is_a_metric_averaged_over_the_episodes_that_have_it():
    with_measures = [
        {**episode("m", 0.2, 1.0), "measures": {"target_apexes": 6.0}},
        {**episode("m", 1.5, 1.0), "measures": {"target_apexes": 2.0}},
        episode("m", 0.5, 1.0),  # evaluated before measures were recorded: left out, not counted as 0
    ]
    overall = conditions_for({"m": {0: with_measures}})[0]
    assert seed_values({0: with_measures}, "measure.target_apexes", overall) == {0: 4.0}
    assert seed_values({0: with_measures}, "measure.high_apexes", overall) == {}  # nobody has it
    assert metric_info("measure.target_apexes") == ("target_apexes per episode", 2)
    with pytest.raises(ValueError, match="measure.<name>"):
        metric_info("measure.")


def test_markdown_tables_show_intervals_only_where_they_exist(episodes):
    conditions = conditions_for(episodes)
    rows = summarise_methods(episodes, "episode_return", conditions)
    overall = [r for r in rows if r.condition == OVERALL]
    text = method_table(overall, notes={"none": "2 done", "context": "3 done, 1 failed"})
    assert "| `context` | 3 | 56.3 |" in text and "3 done, 1 failed" in text
    diffs = paired_differences(episodes, [("context", "none")], "episode_return", conditions[:1])
    assert "| `context` − `none` | 2 | +15.0 | 5.0 |" in difference_table(diffs)
    single = {"a": {0: [episode("a", 0.2, -3.0)]}}
    one = summarise_methods(single, "episode_return", conditions_for(single)[:1])
    assert "| `a` | 1 | −3.0 | — | — |" in method_table(one)
    grid = condition_table([r for r in rows if r.condition != OVERALL], ["none", "context"])
    assert "| mass=0.2 |" in grid and "(n = 3)" in grid
