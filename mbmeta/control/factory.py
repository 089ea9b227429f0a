"""Building the policies that the model-based loop and evaluation run.

The MPC agent of :class:`~mbmeta.control.settings.AgentSettings` (planner within the family's action bounds, the
family's exact reward), and the iteration-0 policy (random actions or a family's scripted controller with noise).
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor

from mbmeta.control.agent import MPCAgent
from mbmeta.control.collection import RandomPolicy
from mbmeta.control.exploration import NoisyControllerPolicy
from mbmeta.control.policy import Policy
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.family import TaskFamily
from mbmeta.imports import import_object
from mbmeta.models.known_physics import with_known_physics
from mbmeta.models.latent_range import LatentRange
from mbmeta.planners import Planner
from mbmeta.types import MetaDynamics, ValueFn


def make_family_planner(family: TaskFamily, settings: AgentSettings) -> Planner:
    """The planner of ``settings`` within the family's action bounds (never bounds from the config).

    Raises:
        ValueError: the planner refuses its settings or the family's bounds (names the planner).
    """
    space = family.action_space
    try:
        return settings.planner.build(low=space.low, high=space.high)
    except (TypeError, ValueError) as err:
        raise ValueError(f"agent.planner {settings.planner}: {err}") from err


def make_agent(
    dynamics: MetaDynamics,
    family: TaskFamily,
    settings: AgentSettings,
    *,
    seed: int = 0,
    device: str | None = None,
    latent_range: LatentRange | None = None,
) -> MPCAgent:
    """Build the MPC agent of ``settings`` around a model, with the family's action bounds and reward.

    ``latent_range`` (the code's range on the model's training data) is required when ``settings.bound_latent``
    and ignored otherwise. ``settings.physics`` makes the agent act with that known physics in place of the model's
    (the model itself is unchanged).
    """
    if settings.bound_latent and latent_range is None:
        raise ValueError(
            "agent.bound_latent needs the range of the model's task code on its training data "
            "(mbmeta.control.latent_range.measure_latent_range); none was given"
        )
    if settings.physics is not None:
        dynamics = with_known_physics(dynamics, settings.physics)
    return MPCAgent(
        dynamics,
        make_family_planner(family, settings),
        reward_fn=family.reward if settings.exact_reward else None,
        termination_fn=family.terminated,
        horizon=settings.horizon,
        context_length=settings.context_length,
        propagation=settings.propagation,
        particles=settings.particles,
        discount=settings.discount,
        disagreement_penalty=settings.disagreement_penalty,
        precision=settings.precision,
        latent_range=latent_range if settings.bound_latent else None,
        terminal_value=make_terminal_value(settings),
        seed=seed,
        device=device,
    )


class WeightedValue:
    """``weight · value(obs)``: a terminal value ``[*S, O] -> [*S]`` scaled by a constant."""

    def __init__(self, value: ValueFn, weight: float) -> None:
        self.value, self.weight = value, float(weight)

    def __call__(self, obs: Tensor) -> Tensor:
        """``[*S, O] -> [*S]``."""
        return self.value(obs) * self.weight


def make_terminal_value(settings: AgentSettings) -> ValueFn | None:
    """The terminal value that ``settings.terminal_value`` names, times ``settings.terminal_weight``; or None.

    Raises:
        ValueError: the path is malformed, cannot be imported or names something that is not callable; the weight
            is not finite.
    """
    if settings.terminal_value is None:
        return None
    if not math.isfinite(settings.terminal_weight):
        raise ValueError(f"agent.terminal_weight must be a finite number, got {settings.terminal_weight!r}")
    value = import_object(settings.terminal_value, "agent.terminal_value")
    if not callable(value):
        raise ValueError(f"agent.terminal_value {settings.terminal_value!r} is not callable")
    return value if settings.terminal_weight == 1.0 else WeightedValue(value, settings.terminal_weight)


def make_initial_policy(
    family: TaskFamily,
    kind: Literal["random", "scripted"] = "random",
    *,
    noise: float = 0.5,
    scale: float = 1.0,
    seed: int = 0,
) -> RandomPolicy | NoisyControllerPolicy:
    """The iteration-0 policy: uniformly random actions, or the family's scripted controller with action noise.

    ``noise`` is the scripted controller's largest noise std; ``scale`` shrinks random actions about the centre of
    the bounds (:class:`~mbmeta.control.collection.RandomPolicy`).

    Raises:
        ValueError: ``scripted`` for a family without a scripted controller.
    """
    if kind == "scripted":
        require_controller(family, "loop.initial_policy")
        return NoisyControllerPolicy(family.make_controller, family.action_space, noise=noise, seed=seed)
    return RandomPolicy(family.action_space, seed=seed, scale=scale)


def require_controller(family: TaskFamily, option: str) -> None:
    """Check that the family has a scripted controller before ``option`` asks for it.

    Raises:
        ValueError: it has none (names ``option`` and the family).
    """
    if family.make_controller() is None:
        raise ValueError(
            f"{option} is 'scripted' but family {family.name!r} has no scripted controller "
            "(TaskFamily.make_controller); use 'random'"
        )


def make_reference_policy(family: TaskFamily, kind: Literal["random", "scripted"], *, seed: int = 0) -> Policy:
    """A reference policy to evaluate beside learned agents: uniform random actions, or the scripted controller.

    ``random`` acts uniformly over the whole action box; ``scripted`` is the family's controller alone (no action
    noise; one controller per environment, reset every episode). ``seed`` seeds the random actions (the scripted
    controller is deterministic).

    Raises:
        ValueError: ``scripted`` for a family without a scripted controller (names ``--policy`` and the family).
    """
    if kind == "scripted":
        require_controller(family, "--policy")
    return make_initial_policy(family, kind, noise=0.0, seed=seed)
