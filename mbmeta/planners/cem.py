"""The cross-entropy method (CEM) over action sequences, as in PETS / mbrl-lib, batched over environments."""

from __future__ import annotations

import torch
from torch import Tensor

from mbmeta.planners.base import Bounds, Planner, check_fraction, check_positive, gather_candidates
from mbmeta.planners.sampling import gaussian
from mbmeta.types import Objective, PlanResult


class CEMPlanner(Planner):
    """Cross-entropy method: refit a diagonal Gaussian to the elites, several times.

    Each iteration draws ``population`` sequences from ``N(mean, std²)`` clipped to the bounds, keeps the
    ``elites`` best, and moves mean and std towards the elites' (``new = alpha·old + (1 - alpha)·elite``). The
    returned plan is the mean of the last iteration's elites (not the single best sample): averaging over the elites
    is less sensitive to one lucky sample under a noisy model, as in mbrl-lib.

    Args:
        low: ``[A]`` lower action bounds.
        high: ``[A]`` upper action bounds.
        population: N, sequences drawn per iteration.
        elites: number of best sequences the Gaussian is refitted to (1 <= elites <= population).
        iterations: refits per call.
        alpha: smoothing weight of the old mean/std, in [0, 1).
        init_std: initial std as a fraction of the half-range ``(high - low) / 2`` (0.5 gives mbrl-lib's
            ``(high - low) / 4``).
    """

    name = "cem"

    def __init__(
        self,
        low: Bounds,
        high: Bounds,
        population: int = 500,
        elites: int = 50,
        iterations: int = 5,
        alpha: float = 0.1,
        init_std: float = 0.5,
    ) -> None:
        super().__init__(low, high)
        check_positive("population", population)
        check_positive("elites", elites)
        check_positive("iterations", iterations)
        check_positive("init_std", init_std)
        check_fraction("alpha", alpha)
        if elites > population:
            raise ValueError(f"elites must be <= population, got elites={elites} > population={population}")
        self.population = int(population)
        self.elites = int(elites)
        self.iterations = int(iterations)
        self.alpha = float(alpha)
        self.init_std = float(init_std)

    def _optimise(
        self, objective: Objective, init: Tensor, generator: torch.Generator, carry: Tensor | None
    ) -> tuple[PlanResult, Tensor | None]:
        batch, horizon, action_dim = init.shape
        mean = init
        std = (self.init_std * self.half_range(init)).expand_as(init)
        for _ in range(self.iterations):
            noise = gaussian((batch, self.population, horizon, action_dim), generator, init)
            candidates = self.clip(mean[:, None] + std[:, None] * noise)
            returns = self.evaluate(objective, candidates)
            elite_returns, index = returns.topk(self.elites, dim=1)
            elites = gather_candidates(candidates, index)
            elite_mean = elites.mean(dim=1)
            elite_std = elites.std(dim=1, correction=0)
            mean = self.alpha * mean + (1 - self.alpha) * elite_mean
            std = self.alpha * std + (1 - self.alpha) * elite_std
        # The elites are in bounds, so their mean is too.
        result = PlanResult(
            elite_mean, self.summary(elite_returns.mean(dim=1), returns), self.population * self.iterations
        )
        return result, None
