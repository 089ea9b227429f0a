"""Random shooting: evaluate uniformly drawn action sequences (and the warm start) and keep the best."""

from __future__ import annotations

import torch
from torch import Tensor

from mbmeta.planners.base import Bounds, Planner, check_positive
from mbmeta.planners.sampling import uniform
from mbmeta.types import Objective, PlanResult


class RandomShootingPlanner(Planner):
    """Best of ``population`` sequences: ``population - 1`` uniform within the bounds, plus the warm start.

    Args:
        low: ``[A]`` lower action bounds.
        high: ``[A]`` upper action bounds.
        population: N, sequences evaluated per call (the warm start is one of them).
    """

    name = "random_shooting"

    def __init__(self, low: Bounds, high: Bounds, population: int = 500) -> None:
        super().__init__(low, high)
        check_positive("population", population)
        self.population = int(population)

    def _optimise(
        self, objective: Objective, init: Tensor, generator: torch.Generator, carry: Tensor | None
    ) -> tuple[PlanResult, Tensor | None]:
        batch, horizon, action_dim = init.shape
        low, high = self.bounds_like(init)
        draws = uniform((batch, self.population - 1, horizon, action_dim), generator, init)
        # Including the warm start means the result is never worse than what the caller already had.
        candidates = torch.cat([init[:, None], low + (high - low) * draws], dim=1)
        returns = self.evaluate(objective, candidates)
        best_return, best = returns.max(dim=1)
        actions = torch.take_along_dim(candidates, best[:, None, None, None], dim=1)[:, 0]
        return PlanResult(actions, self.summary(best_return, returns), self.population), None
