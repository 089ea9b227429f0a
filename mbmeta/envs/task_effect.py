"""Do a family's task parameters really change the physics? The check behind ``mbmeta envs --check``.

For each parameter, two tasks that differ in that parameter only run from the same start state (the same reset seed:
a family's start state never depends on its task) with the same actions; the check reports how far their next
observations drift apart. A parameter whose two rollouts stay identical is one the environment ignores. The actions
are seeded random ones, or the family's scripted controller's plus seeded noise where it has one (the juggler's
ball never reaches the paddle under random actions, so its mass could not show): a controller reads only the
observation, so both rollouts get the same actions for as long as their states agree.

    from mbmeta.envs import get_family
    from mbmeta.envs.task_effect import check_task_effect
    assert all(effect.measurable for effect in check_task_effect(get_family("cadm_ant")))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from mbmeta.envs.family import TaskFamily
from mbmeta.types import TaskParams


@dataclass(frozen=True)
class ParameterEffect:
    """How much one parameter changes the dynamics.

    Attributes:
        parameter: the parameter's name.
        base: its value in the base task (a train task).
        other: the value it is changed to (from the test split where it differs, else from the train split).
        first_step: max ``|Δ next obs|`` after the first step (same state, same action).
        largest: max ``|Δ obs|`` over the rollout (``inf`` if one rollout ended before the other).
        steps: steps compared.
        tolerance: the difference above which the effect counts as measurable.
    """

    parameter: str
    base: float
    other: float
    first_step: float
    largest: float
    steps: int
    tolerance: float

    @property
    def measurable(self) -> bool:
        """Whether the two tasks' trajectories differ by more than the tolerance."""
        return self.largest > self.tolerance


def _other_value(family: TaskFamily, base: TaskParams, name: str, rng: np.random.Generator) -> float | None:
    """A value of ``name`` that differs from ``base``'s: from the test split if it has one, else from train."""
    for split in ("test", "train"):
        if not family.regions(split):
            continue
        for task in family.sample(rng, 64, split):
            if not math.isclose(task[name], base[name]):
                return task[name]
    return None


Actor = Callable[[np.ndarray, int], np.ndarray]  # (obs [O], step) -> action [A]


def _actor(family: TaskFamily, space: gym.spaces.Box, steps: int, rng: np.random.Generator) -> Actor:
    """Seeded random actions, or the family's scripted controller plus a fixed seeded noise sequence if it has one.

    Random actions are uniform within ``family.probe_action_scale`` of each half-range about the bounds' centre.
    """
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    centre, half = (high + low) / 2, (high - low) / 2 * family.probe_action_scale
    noise = rng.uniform(centre - half, centre + half, size=(steps, *space.shape))
    controller = family.make_controller()
    if controller is None:
        return lambda obs, step: noise[step]

    def act(obs: np.ndarray, step: int) -> np.ndarray:
        if step == 0:  # a new rollout: the controller forgets the previous one
            controller.reset()
        # noise of a third of the range keeps the controller's states but makes the system move (e.g. slide)
        return np.clip(controller.act(obs) + noise[step] / 3.0, low, high)

    return act


def _rollout(env: gym.Env, task: TaskParams, seed: int, steps: int, act: Actor) -> np.ndarray:
    """Observations ``[L, O]`` after each step (stops at the end of the episode)."""
    obs, _ = env.reset(seed=seed, options={"task": task})
    out = []
    for step in range(steps):
        obs, _, terminated, truncated, _ = env.step(np.asarray(act(obs, step), dtype=env.action_space.dtype))
        out.append(np.asarray(obs, dtype=np.float64))
        if terminated or truncated:
            break
    return np.array(out)


def check_task_effect(
    family: TaskFamily, *, steps: int = 30, seed: int = 0, tolerance: float = 1e-6, parameters: Sequence[str] = ()
) -> list[ParameterEffect]:
    """For each parameter, roll out two tasks differing only in it from the same state with the same actions.

    Args:
        family: the family to check (its environment is built with ``family.make_env()``).
        steps: steps per rollout (>= 1); a parameter may need a few steps to show (damping needs motion first).
        seed: seeds the base task, the changed values, the random actions and the reset.
        tolerance: the max observation difference above which a parameter counts as changing the physics.
        parameters: the parameters to check (default: all).

    Returns:
        One :class:`ParameterEffect` per parameter that has two distinct values in the family's splits.

    Raises:
        ValueError: ``steps < 1``, an unknown parameter, or a family whose start state depends on the task (then the
            rollouts would not start from the same state).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    unknown = [p for p in parameters if p not in family.parameter_names]
    if unknown:
        raise ValueError(f"family {family.name!r} has no parameters {unknown}; it has {list(family.parameter_names)}")
    rng = np.random.default_rng(seed)
    base = family.sample(rng, 1, "train")[0]
    env = family.make_env()
    try:
        act = _actor(family, env.action_space, steps, rng)
        reference = _rollout(env, base, seed, steps, act)
        start, _ = env.reset(seed=seed, options={"task": base})
        effects = []
        for name in parameters or family.parameter_names:
            other = _other_value(family, base, name, rng)
            if other is None:
                continue
            changed = family.validate({**base.as_dict(), name: other})
            start_changed, _ = env.reset(seed=seed, options={"task": changed})
            if not np.array_equal(start, start_changed):
                raise ValueError(
                    f"family {family.name!r}: the start state depends on {name!r} (same seed, different task), so "
                    "the rollouts cannot start from the same state"
                )
            rollout = _rollout(env, changed, seed, steps, act)
            common = min(len(rollout), len(reference))
            diff = np.abs(rollout[:common] - reference[:common]).max(axis=-1)
            diff = np.where(np.isnan(diff), math.inf, diff)  # a rollout that blew up differs
            largest = float(diff.max()) if len(rollout) == len(reference) else math.inf
            effects.append(ParameterEffect(name, base[name], other, float(diff[0]), largest, common, tolerance))
    finally:
        env.close()
    return effects
