"""Typed settings of the MPC agent (the ``agent`` group of ``mbmeta train`` / ``evaluate`` / ``transfer`` configs).

A plain dataclass, so that jsonargparse turns it into a config group with ``--help`` text and it serialises to
JSON beside a run. :func:`mbmeta.control.factory.make_agent` builds the agent it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class AgentSettings:
    """How the MPC agent plans with a learned model.

    Args:
        planner: planner short name: ``cem``, ``icem``, ``mppi`` or ``random_shooting``.
        planner_options: the planner's settings (e.g. ``population``, ``elites``, ``iterations``); bounds come from
            the environment's action space.
        horizon: H, the planning horizon.
        context_size: K, recent transitions the model adapts on at every step.
        propagation: ``expectation`` (mean prediction), ``ts1`` or ``tsinf`` (trajectory sampling).
        particles: P per candidate (1 for ``expectation``).
        exact_reward: plan with the family's exact reward function (True) or the model's learned reward (False).
        discount: per-step discount of planned rewards.
        disagreement_penalty: λ >= 0: each planned reward minus λ × the ensemble's disagreement (mean over
            observation dims of the members' variance of the predicted next state), which keeps plans where the model
            is trustworthy; with ``ts1``/``tsinf`` it makes every member predict every particle (E× the model rows).
        precision: ``fp32``, or ``bf16`` to evaluate the model under bfloat16 autocast while planning (faster).
    """

    planner: str = "cem"
    planner_options: dict[str, Any] = field(
        default_factory=lambda: {"population": 400, "elites": 40, "iterations": 5, "alpha": 0.1}
    )
    horizon: int = 25
    context_size: int = 10
    propagation: Literal["expectation", "ts1", "tsinf"] = "expectation"
    particles: int = 1
    exact_reward: bool = True
    discount: float = 1.0
    disagreement_penalty: float = 0.0
    precision: Literal["fp32", "bf16"] = "fp32"
