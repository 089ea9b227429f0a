"""Receding-horizon planning: re-plan at every control step from the previous plan shifted by one step.

A planner is pure (:class:`~mbmeta.planners.base.Planner`): the caller owns what carries over between control steps.
:func:`shift_plan` is that step, for a plan ``[B, H, A]`` and for iCEM's carried elites ``[B, C, H, A]`` alike (the
:class:`~mbmeta.control.agent.MPCAgent` shifts with it too), and :class:`RecedingHorizon` is the whole loop for a
planner used on its own, e.g. with the true dynamics or any objective of yours::

    mpc = RecedingHorizon(CEMPlanner(low, high), horizon=20, batch_size=1, seed=0)
    obs, _ = env.reset(seed=0)
    while True:
        result = mpc.plan(objective_from(obs))  # objective: actions [B, N, H, A] -> returns [B, N]
        obs, reward, terminated, truncated, _ = env.step(result.actions[0, 0].numpy())
        ...
        if terminated or truncated:
            mpc.reset()  # a fresh warm start for the next episode
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mbmeta.planners.base import Planner
from mbmeta.types import Objective, PlanResult


def shift_plan(plans: Tensor, fill: Tensor) -> Tensor:
    """Drop each plan's executed first step and append ``fill`` as its new last step.

    Args:
        plans: ``[*S, H, A]`` plans, e.g. a warm start ``[B, H, A]`` or a carry ``[B, C, H, A]``.
        fill: ``[A]`` the new last action (usually the middle of the action bounds).

    Returns:
        ``[*S, H, A]`` a new tensor (``plans`` is not modified).
    """
    fill = fill.to(device=plans.device, dtype=plans.dtype).expand(*plans.shape[:-2], 1, plans.shape[-1])
    return torch.cat([plans[..., 1:, :], fill], dim=-2)


class RecedingHorizon:
    """A planner re-planning at every control step for B environments: it keeps the warm start and the carry.

    Each :meth:`plan` optimises from the previous plan shifted by one step (:func:`shift_plan`, new steps at the
    centre of the bounds), passes the planner's carry on when it uses one (iCEM's elites, shifted alike), and keeps
    the result for the next call. Execute ``result.actions[:, 0]``.

    Args:
        planner: any :class:`~mbmeta.planners.base.Planner` (its ``low``/``high`` bound the actions).
        horizon: H, steps planned ahead.
        batch_size: B, environments planned for in one call.
        seed: seeds the planning generator (all of the planner's randomness).
        device: where plans live; default CPU (put it where the objective computes).
    """

    def __init__(
        self,
        planner: Planner,
        horizon: int,
        batch_size: int = 1,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        for name, value in (("horizon", horizon), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RecedingHorizon: {name} must be an int >= 1, got {value!r}")
        self.planner = planner
        self.horizon = horizon
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.centre = ((planner.low + planner.high) / 2).to(self.device)
        self.reset()

    def reset(self, mask: Any = None) -> None:
        """Start afresh (the warm start at the centre of the bounds, no carry) for all or the masked environments.

        Args:
            mask: ``[B]`` bool of the environments that start a new episode; None: all.
        """
        fresh = self.centre.expand(self.batch_size, self.horizon, self.centre.numel())
        if mask is None:
            self.warm_start: Tensor = fresh.clone()
            self.carry: Tensor | None = None
            return
        done = torch.as_tensor(mask, device=self.device).to(torch.bool).reshape(-1)
        if done.shape != (self.batch_size,):
            raise ValueError(f"mask must have shape ({self.batch_size},), got {tuple(done.shape)}")
        self.warm_start = torch.where(done[:, None, None], fresh, self.warm_start)
        if self.carry is not None:
            self.carry = torch.where(done[:, None, None, None], self.centre, self.carry)

    def plan(self, objective: Objective) -> PlanResult:
        """Plan from the shifted previous plan and keep this plan (and carry), shifted, for the next call.

        Args:
            objective: ``actions [B, N, H, A] -> returns [B, N]`` from the environments' current states.

        Returns:
            The planner's result; ``result.actions[:, 0]`` ``[B, A]`` are the actions to execute now.
        """
        result, carry = self.planner.plan_with_carry(
            objective, self.warm_start, generator=self.generator, carry=self.carry
        )
        self.warm_start = shift_plan(result.actions, self.centre)
        self.carry = None if carry is None else shift_plan(carry, self.centre)
        return result
