"""Model-predictive path integral (MPPI) control: a return-weighted average of perturbations around the warm start."""

from __future__ import annotations

import torch
from torch import Tensor

from mbmeta.planners.base import Bounds, Planner, check_fraction, check_positive
from mbmeta.planners.sampling import gaussian
from mbmeta.types import Objective, PlanResult


class MPPIPlanner(Planner):
    """MPPI: perturb the mean, weight each sequence by ``softmax(return / temperature)``, move the mean, repeat.

    The current mean is always one of the ``population`` sequences (zero perturbation), so a good warm start is
    never lost to unlucky noise. Perturbed sequences are clipped to the bounds, so the weighted mean is in bounds.

    Args:
        low: ``[A]`` lower action bounds.
        high: ``[A]`` upper action bounds.
        population: N, sequences per iteration (including the unperturbed mean).
        iterations: mean updates per call.
        temperature: lambda > 0, in units of the objective's return: smaller is greedier.
        noise_std: sigma of the perturbations as a fraction of the half-range ``(high - low) / 2``.
        alpha: smoothing weight of the old mean in each update, in [0, 1).
    """

    name = "mppi"

    def __init__(
        self,
        low: Bounds,
        high: Bounds,
        population: int = 500,
        iterations: int = 5,
        temperature: float = 1.0,
        noise_std: float = 0.5,
        alpha: float = 0.0,
    ) -> None:
        super().__init__(low, high)
        check_positive("population", population)
        check_positive("iterations", iterations)
        check_positive("temperature", temperature)
        check_positive("noise_std", noise_std)
        check_fraction("alpha", alpha)
        self.population = int(population)
        self.iterations = int(iterations)
        self.temperature = float(temperature)
        self.noise_std = float(noise_std)
        self.alpha = float(alpha)

    def _optimise(
        self, objective: Objective, init: Tensor, generator: torch.Generator, carry: Tensor | None
    ) -> tuple[PlanResult, Tensor | None]:
        batch, horizon, action_dim = init.shape
        sigma = self.noise_std * self.half_range(init)
        mean = init
        for _ in range(self.iterations):
            noise = gaussian((batch, self.population - 1, horizon, action_dim), generator, init)
            candidates = torch.cat([mean[:, None], self.clip(mean[:, None] + sigma * noise)], dim=1)
            returns = self.evaluate(objective, candidates)
            # Subtracting the best return before dividing keeps every exponent finite, even with a tiny temperature
            # or when all returns are the invalid stand-in (then the weights are uniform).
            best = returns.amax(dim=1, keepdim=True)
            weights = torch.softmax((returns - best) / self.temperature, dim=1)
            update = (weights[:, :, None, None] * candidates).sum(dim=1)
            mean = self.alpha * mean + (1 - self.alpha) * update
        mean = self.clip(mean)  # guard against rounding just outside a bound
        value = self.summary((weights * returns).sum(dim=1), returns)
        return PlanResult(mean, value, self.population * self.iterations), None
