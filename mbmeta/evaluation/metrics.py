"""Summaries of collected episodes: return statistics and what the episodes delivered per planning horizon."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbmeta.control.collection import EpisodeStats
from mbmeta.control.settings import AgentSettings


def realised_horizon_return(episodes: Sequence[EpisodeStats], agent: AgentSettings) -> float:
    """What the episodes delivered per planning horizon: their reward per step summed over H steps.

    Discounted as the planner discounts, so it compares with the planner's ``plan/planned_return_mean``; the planned
    return lies far above it when the planner exploits the model's errors.
    """
    steps = sum(s.length for s in episodes)
    per_step = sum(s.episode_return for s in episodes) / max(steps, 1)
    return float(per_step * sum(agent.discount**t for t in range(agent.horizon)))


def episode_metrics(stats: Sequence[EpisodeStats], prefix: str) -> dict[str, float]:
    """Mean/min/max return, mean length and, where the family defines them, success rate and measures' means."""
    returns = np.array([s.episode_return for s in stats], dtype=np.float64)
    lengths = np.array([s.length for s in stats], dtype=np.float64)
    metrics = {
        f"{prefix}/return_mean": float(returns.mean()),
        f"{prefix}/return_min": float(returns.min()),
        f"{prefix}/return_max": float(returns.max()),
        f"{prefix}/length_mean": float(lengths.mean()),
    }
    successes = [s.success for s in stats if s.success is not None]
    if successes:
        metrics[f"{prefix}/success_rate"] = float(np.mean(successes))
    for name in sorted({name for s in stats for name in s.measures}):
        metrics[f"{prefix}/{name}_mean"] = float(np.mean([s.measures[name] for s in stats if name in s.measures]))
    return metrics
