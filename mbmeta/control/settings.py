"""Typed settings of the MPC agent (the ``agent`` group of ``mbmeta train`` / ``evaluate`` / ``transfer`` configs).

A dataclass, so that jsonargparse turns it into a config group with ``--help`` text; its planner is typed settings
chosen by short name (:mod:`mbmeta.planners.settings`). :meth:`AgentSettings.as_config` is the JSON form a run
records, :func:`upgrade_agent_config` reads the form older runs recorded, and
:func:`mbmeta.control.factory.make_agent` builds the agent the settings describe.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mbmeta.planners.settings import PlannerSettings, cem, planner_settings


def _default_planner() -> PlannerSettings:
    return cem(population=400, elites=40, iterations=5, alpha=0.1)


@dataclass
class AgentSettings:
    """How the MPC agent plans with a learned model.

    Args:
        planner: the planner and its options, chosen by short name: ``cem``, ``icem``, ``mppi`` or
            ``random_shooting`` (e.g. ``--agent.planner icem --agent.planner.population 300``; each planner's
            options are listed at the end of ``--help``); the action bounds come from the task family.
        horizon: H, the planning horizon.
        context_length: K, recent transitions the model adapts on at every step; ``mbmeta train`` requires it to
            equal ``data.context_length`` (the K the model is trained with).
        propagation: ``expectation`` (mean prediction), ``ts1`` or ``tsinf`` (trajectory sampling).
        particles: P per candidate (1 for ``expectation``).
        exact_reward: plan with the family's exact reward function (True) or the model's learned reward (False).
        discount: per-step discount of planned rewards.
        disagreement_penalty: λ >= 0: each planned reward minus λ × the ensemble's disagreement (mean over
            observation dims of the members' variance of the predicted next state), which keeps plans where the model
            is trustworthy; with ``ts1``/``tsinf`` it makes every member predict every particle (E× the model rows).
        precision: ``fp32``, or ``bf16`` to evaluate the model under bfloat16 autocast while planning (faster).
        bound_latent: clamp the model's task code ``z`` at every step into the range it took on the model's own
            training data (:mod:`mbmeta.models.latent_range`), so that a task far outside the training range cannot
            push ``z`` where the model was never fitted; for ``context``, ``recurrent`` and ``oracle`` models.
            ``mbmeta train`` measures the range after each fit, ``mbmeta evaluate`` from the checkpoint's run
            directory (its ``state.json`` and ``buffer.npz``).
        terminal_value: import path ``package.module:function`` of a value ``(obs [*S, O]) -> [*S]`` of the state
            a planned rollout ends in, added to its return (what lies beyond the horizon, when it is known; e.g.
            ``mbmeta.envs.juggler:bounce_landing_value``). None: nothing is added.
        terminal_weight: the factor on ``terminal_value``.
        physics: import path ``package.module:Class`` of a known physics to act with in place of the model's own,
            taking its fitted parameters (:func:`~mbmeta.models.known_physics.with_known_physics`): an acting-time
            variant such as ``mbmeta.envs.juggler_contact:AdaptiveArmBallContact`` for a model trained with
            ``BallContact``. None: the model's own.
    """

    planner: PlannerSettings = field(default_factory=_default_planner)
    horizon: int = 25
    context_length: int = 10
    propagation: Literal["expectation", "ts1", "tsinf"] = "expectation"
    particles: int = 1
    exact_reward: bool = True
    discount: float = 1.0
    disagreement_penalty: float = 0.0
    precision: Literal["fp32", "bf16"] = "fp32"
    bound_latent: bool = False
    terminal_value: str | None = None
    terminal_weight: float = 1.0
    physics: str | None = None

    def __post_init__(self) -> None:
        # From Python a planner name or a {class_path, init_args} mapping is accepted too; kept as typed settings.
        self.planner = planner_settings(self.planner)

    @property
    def context_size(self) -> int:
        """Deprecated: the old name of :attr:`context_length`."""
        warnings.warn("AgentSettings.context_size is deprecated; use context_length", DeprecationWarning, stacklevel=2)
        return self.context_length

    def as_config(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values, the planner as ``{"class_path": name, "init_args": {...}}``."""
        config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**config, "planner": self.planner.as_config()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AgentSettings:
        """Settings from :meth:`as_config`'s form or an older run's (``planner_options``, ``context_size``).

        Raises:
            ValueError: an unknown key, planner or planner option (named).
        """
        upgraded = upgrade_agent_config(config)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(upgraded) - known)
        if unknown:
            raise ValueError(f"unknown agent setting(s) {unknown}; valid ones are {sorted(known)}")
        return cls(**upgraded)


def upgrade_agent_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """An ``agent`` group in today's form, whichever mbmeta version wrote it; other keys are kept as they are.

    ``{"planner": "cem", "planner_options": {...}, "context_size": 10}`` (before typed planner settings) becomes
    ``{"planner": {"class_path": "cem", "init_args": {...every option...}}, "context_length": 10}``; a planner in
    today's form gets its defaults filled in too, so that equal settings compare equal.

    Raises:
        ValueError: an unknown planner or planner option (named).
    """
    upgraded = dict(config)
    options = upgraded.pop("planner_options", None)
    if "context_size" in upgraded:
        size = upgraded.pop("context_size")
        upgraded.setdefault("context_length", size)
    if "planner" in upgraded or options is not None:
        spec = upgraded.get("planner", _default_planner() if options is None else "cem")
        upgraded["planner"] = planner_settings(spec, options).as_config()
    return upgraded
