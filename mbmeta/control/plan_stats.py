"""Running statistics of an agent's planning calls: cost (time, candidate sequences) and planned returns.

What ``mbmeta train`` and ``mbmeta evaluate`` log as ``plan/*`` to W&B. Accumulated without host syncs: the planned
returns are summed on the planning device and read once, in :meth:`PlanStats.summary`.
"""

from __future__ import annotations

import torch
from torch import Tensor


class PlanStats:
    """Totals over planning calls since construction or the last :meth:`clear`."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every recorded call."""
        self.calls = 0  # planning calls (one per agent step, all B environments together)
        self.env_steps = 0  # environment-steps planned for (B per call)
        self.seconds = 0.0  # wall-clock time of the calls (adaptation + planning + the action's transfer to host)
        self.sequences = 0  # candidate action sequences evaluated, summed over environments
        self.sequence_steps = 0  # sequences × horizon: the model steps of each particle/member row group
        self.fallbacks = 0  # environment-steps where no finite plan was found (the previous plan was reused)
        self._return_sum: Tensor | None = None  # sum over finite environment-steps of the planner's returns
        self._return_count: Tensor | None = None

    def record(
        self, *, batch: int, horizon: int, rows: int, returns: Tensor, finite: Tensor, seconds: float, fallbacks: int
    ) -> None:
        """Add one planning call.

        Args:
            batch: B, environments planned for.
            horizon: H.
            rows: candidate sequences the planner evaluated per environment (``PlanResult.rows``).
            returns: ``[B]`` the planner's return diagnostic (``PlanResult.returns``).
            finite: ``[B]`` bool, whether the plan of each environment was finite.
            seconds: wall-clock time of the call.
            fallbacks: environments of this call that fell back to the previous plan.
        """
        self.calls += 1
        self.env_steps += batch
        self.seconds += seconds
        self.sequences += rows * batch
        self.sequence_steps += rows * batch * horizon
        self.fallbacks += fallbacks
        kept = torch.where(finite, returns.float(), torch.zeros_like(returns, dtype=torch.float32)).sum()
        count = finite.sum()
        if self._return_sum is None:
            self._return_sum, self._return_count = kept, count
        else:
            self._return_sum = self._return_sum + kept
            self._return_count = self._return_count + count

    def summary(self, prefix: str = "plan/") -> dict[str, float]:
        """Per-step figures (empty before the first call).

        Returns:
            ``{prefix + name: value}`` with ``ms_per_call`` (one call plans all B environments),
            ``ms_per_env_step``, ``sequences_per_env_step`` (candidates × iterations), ``sequence_steps_per_s``
            (sequence-steps the objective rolled out per second), ``planned_return_mean`` (the planner's return
            diagnostic, e.g. the mean elite return, over finite plans) and ``fallback_fraction``.
        """
        if not self.calls:
            return {}
        count = int(self._return_count) if self._return_count is not None else 0
        planned = float(self._return_sum) / count if count else float("nan")
        return {
            f"{prefix}ms_per_call": 1e3 * self.seconds / self.calls,
            f"{prefix}ms_per_env_step": 1e3 * self.seconds / self.env_steps,
            f"{prefix}sequences_per_env_step": self.sequences / self.env_steps,
            f"{prefix}sequence_steps_per_s": self.sequence_steps / self.seconds if self.seconds > 0 else float("nan"),
            f"{prefix}planned_return_mean": planned,
            f"{prefix}fallback_fraction": self.fallbacks / self.env_steps,
        }
