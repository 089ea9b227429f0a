"""The planner base class: action bounds, argument checks and the pieces every sampling planner shares.

A planner optimises an :data:`~mbmeta.types.Objective` (``actions [B, N, H, A] -> returns [B, N]``) over action
sequences inside box bounds. Planners are pure: nothing is kept between calls, the caller owns the warm start
(``init``) and, for planners that use it, the *carry* (e.g. iCEM's elites of the previous step, shifted by the
caller). All work is batched over the B environments and the N candidates; only iterations are a Python loop.

Non-finite returns (a diverging model) are replaced by :data:`INVALID_RETURN` before any selection, so such
candidates are never elites and never weigh in an average. When *no* candidate of the last iteration had a finite
return for an environment, :attr:`PlanResult.returns` is ``-inf`` for it: callers (the agent) use that to fall back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from mbmeta.planners.sampling import fresh_generator
from mbmeta.types import Objective, PlanResult

INVALID_RETURN = -1e30
"""Stand-in for a NaN/inf return: far below any real return, yet finite so sums and softmaxes stay finite."""

Bounds = Sequence[float] | Tensor


def _as_bound(value: Bounds, name: str) -> Tensor:
    bound = torch.as_tensor(value, dtype=torch.float32).detach().clone().cpu()
    if bound.ndim != 1 or bound.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of shape [A], got shape {tuple(bound.shape)}")
    if not torch.isfinite(bound).all():
        raise ValueError(f"{name} must be finite, got {bound.tolist()}")
    return bound


def check_positive(name: str, value: float | int) -> None:
    """Raise ValueError unless ``value > 0``."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_fraction(name: str, value: float, *, closed_high: bool = False) -> None:
    """Raise ValueError unless ``0 <= value < 1`` (or ``<= 1`` when ``closed_high``)."""
    ok = 0.0 <= value <= 1.0 if closed_high else 0.0 <= value < 1.0
    if not ok:
        raise ValueError(f"{name} must be in [0, 1{']' if closed_high else ')'}, got {value}")


def gather_candidates(candidates: Tensor, index: Tensor) -> Tensor:
    """Select candidates per environment: ``[B, N, H, A]`` and index ``[B, K]`` -> ``[B, K, H, A]``."""
    return torch.take_along_dim(candidates, index[:, :, None, None], dim=1)


class Planner(ABC):
    """Base class of the sampling planners: holds the action bounds and checks every call.

    Subclasses implement :meth:`_optimise`. Call :meth:`plan` (the :class:`~mbmeta.types` planner protocol) or
    :meth:`plan_with_carry` (also passes state such as elites from one control step to the next).

    Args:
        low: ``[A]`` lower action bounds.
        high: ``[A]`` upper action bounds, each > the matching ``low``.
    """

    name: ClassVar[str] = ""
    uses_carry: ClassVar[bool] = False
    """Whether :meth:`plan_with_carry` makes use of a carry (otherwise it is ignored and None is returned)."""

    def __init__(self, low: Bounds, high: Bounds) -> None:
        self.low = _as_bound(low, "low")
        self.high = _as_bound(high, "high")
        if self.low.shape != self.high.shape:
            raise ValueError(
                f"low and high must have the same shape [A], got {tuple(self.low.shape)} and {tuple(self.high.shape)}"
            )
        if not (self.low < self.high).all():
            raise ValueError(f"need low < high elementwise, got low={self.low.tolist()} high={self.high.tolist()}")
        self._device_bounds: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    @property
    def action_dim(self) -> int:
        """A, the action size."""
        return self.low.numel()

    def centre(self, like: Tensor) -> Tensor:
        """``[A]`` middle of the bounds on ``like``'s device and dtype."""
        low, high = self.bounds_like(like)
        return (low + high) / 2

    def bounds_like(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """``low, high`` ``[A]`` on ``like``'s device and dtype (cached per device, so moved once)."""
        key = (like.device, like.dtype)
        if key not in self._device_bounds:
            self._device_bounds[key] = (
                self.low.to(device=like.device, dtype=like.dtype),
                self.high.to(device=like.device, dtype=like.dtype),
            )
        return self._device_bounds[key]

    def plan(self, objective: Objective, init: Tensor, *, generator: torch.Generator | None = None) -> PlanResult:
        """Optimise ``objective`` starting from ``init``.

        Args:
            objective: ``actions [B, N, H, A] -> returns [B, N]``, higher is better.
            init: ``[B, H, A]`` warm start (not modified; clipped to the bounds, NaN entries replaced by the centre).
            generator: source of all randomness; None draws a fresh OS-seeded generator (not reproducible).

        Returns:
            ``PlanResult(actions [B, H, A] within bounds, returns [B], rows)``.
        """
        result, _ = self.plan_with_carry(objective, init, generator=generator)
        return result

    def plan_with_carry(
        self,
        objective: Objective,
        init: Tensor,
        *,
        generator: torch.Generator | None = None,
        carry: Tensor | None = None,
    ) -> tuple[PlanResult, Tensor | None]:
        """Like :meth:`plan`, also taking and returning state carried between control steps.

        Args:
            objective: ``actions [B, N, H, A] -> returns [B, N]``.
            init: ``[B, H, A]`` warm start.
            generator: source of all randomness.
            carry: ``[B, C, H, A]`` candidate sequences from the previous step, best first, already shifted by the
                caller (e.g. iCEM's elites); ignored by planners whose ``uses_carry`` is False.

        Returns:
            The plan, and the carry for the next step (``[B, K, H, A]`` unshifted, best first) or None.
        """
        init = self._checked_init(init)
        if carry is not None and self.uses_carry:
            carry = self._checked_carry(carry, init)
        gen = generator if generator is not None else fresh_generator(init.device)
        # Planning never needs gradients; no_grad also keeps a learned model's rollouts from building graphs.
        with torch.no_grad():
            result, carry = self._optimise(objective, init, gen, carry if self.uses_carry else None)
        # A plan that averages in-bounds candidates (CEM/iCEM's elite mean, MPPI's weighted mean) can round one ulp
        # past a bound in float32 (seen on a box 1e-3 wide); the contract is actions within the bounds.
        return result._replace(actions=self.clip(result.actions)), carry

    @abstractmethod
    def _optimise(
        self, objective: Objective, init: Tensor, generator: torch.Generator, carry: Tensor | None
    ) -> tuple[PlanResult, Tensor | None]:
        """Run the optimisation on a checked, clipped copy of ``init`` ``[B, H, A]``."""

    # ----- helpers for subclasses -----------------------------------------------------------------------------
    def clip(self, actions: Tensor) -> Tensor:
        """Clip ``[..., A]`` to the bounds (a new tensor)."""
        low, high = self.bounds_like(actions)
        return torch.clamp(actions, min=low, max=high)

    def half_range(self, like: Tensor) -> Tensor:
        """``[A]`` half the width of the bounds: the unit in which initial and noise standard deviations are given."""
        low, high = self.bounds_like(like)
        return (high - low) / 2

    def evaluate(self, objective: Objective, candidates: Tensor) -> Tensor:
        """Evaluate ``[B, N, H, A]`` candidates; returns ``[B, N]`` with NaN/inf replaced by :data:`INVALID_RETURN`."""
        returns = objective(candidates)
        expected = tuple(candidates.shape[:2])
        if tuple(returns.shape) != expected:
            raise ValueError(f"objective must return shape [B, N] = {list(expected)}, got {list(returns.shape)}")
        return torch.where(torch.isfinite(returns), returns, torch.full_like(returns, INVALID_RETURN))

    @staticmethod
    def summary(value: Tensor, last_returns: Tensor) -> Tensor:
        """``value`` ``[B]`` where some candidate of the last iteration was valid, ``-inf`` elsewhere."""
        valid = (last_returns > INVALID_RETURN).any(dim=1)
        return torch.where(valid, value, torch.full_like(value, float("-inf")))

    def _checked_init(self, init: Tensor) -> Tensor:
        if not isinstance(init, Tensor):
            raise TypeError(f"init must be a torch.Tensor of shape [B, H, A], got {type(init).__name__}")
        if init.ndim != 3 or init.shape[2] != self.action_dim:
            raise ValueError(f"init must have shape [B, H, A] with A={self.action_dim}, got {list(init.shape)}")
        check_positive("horizon (init.shape[1])", init.shape[1])
        check_positive("batch size (init.shape[0])", init.shape[0])
        if not init.is_floating_point():
            raise ValueError(f"init must be a floating-point tensor, got {init.dtype}")
        # A copy: never mutate the caller's tensor; NaN entries (e.g. from a bad previous plan) restart at the centre.
        safe = torch.where(torch.isfinite(init), init, self.centre(init).expand_as(init))
        return self.clip(safe)

    def _checked_carry(self, carry: Tensor, init: Tensor) -> Tensor:
        batch, horizon, action_dim = init.shape
        if carry.ndim != 4 or (carry.shape[0], carry.shape[2], carry.shape[3]) != (batch, horizon, action_dim):
            raise ValueError(
                f"carry must have shape [B, C, H, A] = [{batch}, C, {horizon}, {action_dim}], got {list(carry.shape)}"
            )
        carry = carry.to(device=init.device, dtype=init.dtype)
        return self.clip(torch.where(torch.isfinite(carry), carry, self.centre(carry).expand_as(carry)))
