"""`evaluation/metrics.py`: episode summaries and what the episodes delivered per planning horizon."""

import dataclasses

import pytest

from mbmeta.control.collection import EpisodeStats
from mbmeta.control.settings import AgentSettings
from mbmeta.evaluation.metrics import episode_metrics, realised_horizon_return


def stats(episode_return, length, success=None, measures=None):
    return EpisodeStats(0, 0, 0, {"mass": 1.0}, episode_return, length, False, success, measures or {})


def test_episode_metrics_summarise_returns_lengths_and_successes():
    episodes = [stats(-1.0, 10, True), stats(3.0, 20, False), stats(7.0, 30, None)]
    assert episode_metrics(episodes, "collect") == {
        "collect/return_mean": 3.0,
        "collect/return_min": -1.0,
        "collect/return_max": 7.0,
        "collect/length_mean": 20.0,
        "collect/success_rate": 0.5,  # the episode without a success verdict is not counted
    }


def test_episode_metrics_average_the_family_measures_over_the_episodes_that_have_them():
    episodes = [stats(1.0, 5, measures={"apexes": 2.0}), stats(2.0, 5, measures={"apexes": 5.0}), stats(3.0, 5)]
    metrics = episode_metrics(episodes, "collect")
    assert metrics["collect/apexes_mean"] == 3.5
    assert not any(k.endswith("_mean") and "apexes" not in k and "return" not in k and "length" not in k
                   for k in metrics)  # fmt: skip


def test_episode_metrics_leave_out_the_success_rate_where_none_is_defined():
    assert "eval/success_rate" not in episode_metrics([stats(1.0, 5), stats(2.0, 5)], "eval")


def test_realised_horizon_return_is_the_reward_per_step_summed_over_the_horizon():
    episodes = [stats(10.0, 20), stats(20.0, 40)]  # 30 over 60 steps: 0.5 per step
    undiscounted = dataclasses.replace(AgentSettings(), horizon=4, discount=1.0)
    assert realised_horizon_return(episodes, undiscounted) == pytest.approx(4 * 0.5)
    discounted = dataclasses.replace(AgentSettings(), horizon=4, discount=0.5)
    assert realised_horizon_return(episodes, discounted) == pytest.approx(0.5 * (1 + 0.5 + 0.25 + 0.125))


def test_realised_horizon_return_of_no_steps_is_zero():
    assert realised_horizon_return([], AgentSettings()) == 0.0
