"""Does a family's environment take, apply and report its task? The check ``mbmeta train`` runs before collecting.

The contract of a task family's environment (see :mod:`mbmeta.envs.family`):

- it takes a task through ``env.reset(options={"task": task})`` and through a settable ``task`` attribute, which is
  what ``vector_env.set_attr("task", [...])`` reaches (the collector's way: a vector env's autoreset takes no
  options), followed by a reset;
- it applies the task to the physics;
- it reports the task as ``info["task"]`` (a ``dict`` name -> value) after every reset and step.

A Gymnasium env that knows nothing of tasks breaks it silently: it ignores ``options["task"]``, and ``set_attr``
creates a ``task`` attribute on the outermost wrapper that the physics never reads, so the buffer would record tasks
the robot never had. :func:`check_family_env` refuses such a family with a one-line ValueError saying what is
missing, and checks that every parameter changes the physics
(:func:`~mbmeta.envs.task_effect.check_task_effect`) and, when planning uses them, that the family's exact
``reward`` and ``terminated`` agree with ``env.step``. A passed check is remembered for the process (about 10-200 ms
for the shipped families, once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mbmeta.envs.family import TaskFamily
from mbmeta.envs.task_effect import check_task_effect
from mbmeta.types import TaskParams

CONTRACT = (
    "a family's env must take a task through reset(options={'task': task}) and through a settable `task` attribute "
    "(what vector_env.set_attr('task', ...) reaches), apply it to the physics, and report it as info['task'] (a dict "
    "name -> value) after every reset and step; MujocoFieldFamily does this for any Gymnasium MuJoCo env "
    "(docs/bring_your_own_robot.md)"
)

REWARD_TOLERANCE = 1e-4
"""Largest ``|family.reward - env reward| / (1 + |env reward|)`` accepted (float32 torch against float64 MuJoCo)."""

_passed: list[tuple[TaskFamily, bool]] = []  # (family, exact reward checked) of the checks passed in this process


def check_family_env(family: TaskFamily, *, exact_reward: bool = True, steps: int = 30, seed: int = 0) -> None:
    """Refuse a family whose env does not take, apply and report its task, or whose exact functions are wrong.

    Args:
        family: the family to check (its env is built with ``family.make_env()``).
        exact_reward: also check that ``family.reward`` equals ``env.step``'s reward on a few random steps (when the
            planner will use it); ``family.terminated``, which the planner always uses, is checked in any case.
        steps: steps per rollout of the physics check (a parameter may need a few steps to show).
        seed: seeds the tasks, the actions and the resets.

    Raises:
        ValueError: one line naming the family and what it breaks.
    """
    if any(f is family and (done or not exact_reward) for f, done in _passed):
        return
    rng = np.random.default_rng(seed)
    first = family.sample(rng, 1, "train")[0]
    second = next((t for t in family.sample(rng, 16, "test" if family.test else "train") if t != first), first)
    env = family.make_env()
    try:
        _check_reports(family, env, first, second, seed, rng)
        _check_exact_functions(family, env, first, seed, rng, exact_reward)
    finally:
        env.close()
    inert = [e for e in check_task_effect(family, steps=steps, seed=seed) if not e.measurable]
    if inert:
        names = ", ".join(f"{e.parameter!r} ({e.base:g} vs {e.other:g})" for e in inert)
        raise ValueError(
            f"family {family.name!r}: the physics ignores parameter(s) {names}: two tasks differing only in it gave "
            f"the same observations for {inert[0].steps} steps from the same state with the same actions. Check "
            f"that the env applies the task to the simulator it steps; {CONTRACT}"
        )
    _passed.append((family, exact_reward))


def _check_reports(
    family: TaskFamily, env: gym.Env, first: TaskParams, second: TaskParams, seed: int, rng: np.random.Generator
) -> None:
    """The env reports ``first`` after ``reset(options=...)`` and a step, and ``second`` after ``task = second``."""
    _, info = env.reset(seed=seed, options={"task": first})
    _expect(family, info, first, "after env.reset(options={'task': task})")
    _, _, _, _, info = env.step(_random_action(env.action_space, rng))
    _expect(family, info, first, "after env.step")
    env.set_wrapper_attr("task", second)  # what SyncVectorEnv/AsyncVectorEnv.set_attr("task", ...) do
    _, info = env.reset(seed=seed)
    _expect(family, info, second, "after setting env.task (vector_env.set_attr('task', ...)) and env.reset()")


def _expect(family: TaskFamily, info: Mapping[str, Any], task: TaskParams, when: str) -> None:
    reported = info.get("task")
    if not isinstance(reported, Mapping):
        raise ValueError(f"family {family.name!r}: its env does not report the task in info['task'] {when}; {CONTRACT}")
    names = set(family.parameter_names)
    try:
        same = set(reported) == names and all(math.isclose(float(reported[n]), task[n], abs_tol=1e-9) for n in names)
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ValueError(
            f"family {family.name!r}: its env reports task {dict(reported)} {when}, but was given {task.as_dict()}; "
            f"{CONTRACT}"
        )


def _random_action(space: gym.spaces.Space, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Box) and np.isfinite(space.low).all() and np.isfinite(space.high).all():
        return rng.uniform(space.low, space.high).astype(space.dtype)
    raise ValueError(f"a task family's env needs a bounded Box action space, got {space}")


def _exact(family: TaskFamily, name: str, row: list[torch.Tensor]) -> torch.Tensor:
    """``family.<name>(*row)`` on one transition, checked to be a ``(1,)`` tensor (float for reward, bool else)."""
    try:
        value = getattr(family, name)(*row)
    except Exception as err:
        fix = "fix it, or plan with the learned reward (agent.exact_reward false)" if name == "reward" else "fix it"
        raise ValueError(
            f"family {family.name!r}: its {name}() failed on a real transition ({type(err).__name__}: {err}); {fix}"
        ) from err
    wanted = "bool" if name == "terminated" else "float"
    ok = isinstance(value, torch.Tensor) and tuple(value.shape) == (1,)
    ok = ok and (value.dtype == torch.bool if name == "terminated" else value.is_floating_point())
    if not ok:
        got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"family {family.name!r}: {name}(obs [1, O], action [1, A], next_obs [1, O]) must return a {wanted} "
            f"tensor of shape (1,) (one value per row, no trailing 1), got {got}"
        )
    return value


def _check_exact_functions(
    family: TaskFamily, env: gym.Env, task: TaskParams, seed: int, rng: np.random.Generator, exact_reward: bool
) -> None:
    """``family.terminated`` (and ``reward``) on a few random transitions equal what ``env.step`` returned."""
    obs, _ = env.reset(seed=seed, options={"task": task})
    for _ in range(5):
        action = _random_action(env.action_space, rng)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        row = [torch.as_tensor(np.asarray(x, dtype=np.float32))[None] for x in (obs, action, next_obs)]
        ended = _exact(family, "terminated", row)
        planned = _exact(family, "reward", row) if exact_reward else torch.tensor([float(reward)])
        if abs(float(planned) - float(reward)) > REWARD_TOLERANCE * (1 + abs(float(reward))):
            raise ValueError(
                f"family {family.name!r}: its exact reward gives {float(planned):.6g} where env.step returned "
                f"{float(reward):.6g} (same transition): the planner would optimise another reward than the env's. "
                "Fix the reward function, or plan with the learned reward (agent.exact_reward false)"
            )
        if bool(ended) != bool(terminated):
            raise ValueError(
                f"family {family.name!r}: its terminated() gives {bool(ended)} where env.step returned terminated="
                f"{bool(terminated)} (same transition)"
            )
        if terminated or truncated:
            break
        obs = next_obs
