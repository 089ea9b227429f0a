"""The task contract check: before collecting, a family's env must take, apply and report its task.

The issue's silent failure: a family whose env ignores the task collected without error, the buffer recording a
gear of 1.31 while the physics stayed nominal. Each broken env below is refused with a one-line message.
"""

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbmeta.control.settings import AgentSettings
from mbmeta.envs import Field, Interval, MujocoFieldFamily, families
from mbmeta.envs.contract import check_family_env
from mbmeta.runs.checks import check_settings
from mbmeta.runs.settings import LoopSettings


def _terminated(obs, action, next_obs):
    return ~torch.isfinite(next_obs).all(-1) | (next_obs[..., 1].abs() > 0.2)


def _reward(obs, action, next_obs):
    return (~_terminated(obs, action, next_obs)).float()


class GearFamily(MujocoFieldFamily):
    """InvertedPendulum-v5 with its gear varied; subclasses break the env contract one way each."""

    def __init__(self, name: str = "contract_gear", **kwargs: Any) -> None:
        settings = {"reward": _reward, "terminated": _terminated, **kwargs}
        super().__init__(
            name, "InvertedPendulum-v5", [Field("gear", "actuator_gear")], {"gear": Interval(0.5, 1.5)},
            {"gear": [2.0, 2.5]}, **settings,
        )  # fmt: skip


class PlainGymnasiumEnv(GearFamily):
    """The env knows nothing of tasks: ignores options["task"], reports nothing (the issue's case)."""

    def make_env(self, **kwargs):
        return gym.make(self.env_id, **kwargs)


class ReportsButIgnores(gym.Wrapper):
    """Keeps and reports a task (as a settable attribute too) but never applies it to the physics."""

    def __init__(self, env):
        super().__init__(env)
        self.task = {"gear": 1.0}

    def reset(self, *, seed=None, options=None):
        if options and "task" in options:
            self.task = dict(options["task"])
        obs, info = self.env.reset(seed=seed)
        return obs, {**info, "task": dict(self.task)}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "task": dict(self.task)}


class IgnoredTask(GearFamily):
    def make_env(self, **kwargs):
        return ReportsButIgnores(gym.make(self.env_id, **kwargs))


class OptionsOnly(gym.Wrapper):
    """Applies and reports options["task"], but has no settable `task`: set_attr creates an unused attribute."""

    def __init__(self, env):
        super().__init__(env)
        self._task = {"gear": 1.0}
        self._nominal = env.unwrapped.model.actuator_gear.copy()

    def reset(self, *, seed=None, options=None):
        if options and "task" in options:
            self._task = dict(options["task"])
            self.env.unwrapped.model.actuator_gear[:] = self._nominal * self._task["gear"]
        obs, info = self.env.reset(seed=seed)
        return obs, {**info, "task": dict(self._task)}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "task": dict(self._task)}


class SetAttrDoesNotReach(GearFamily):
    def make_env(self, **kwargs):
        return OptionsOnly(gym.make(self.env_id, **kwargs))


@pytest.mark.parametrize("family", families(installed=False), ids=lambda f: f.name)
def test_every_shipped_family_passes(family):
    check_family_env(family)


@pytest.mark.parametrize(
    "family, message",
    [
        (
            PlainGymnasiumEnv(),
            r"does not report the task in info\['task'\] after env\.reset\(options=.*MujocoFieldFamily",
        ),
        (IgnoredTask(), r"the physics ignores parameter\(s\) 'gear'"),
        (SetAttrDoesNotReach(), r"reports task \{'gear': 1\.\d+\} after setting env\.task \(vector_env\.set_attr"),
        (GearFamily(reward=lambda o, a, n: torch.zeros(n.shape[:-1])), r"its exact reward gives 0 where env\.step"),
        (
            GearFamily(reward=lambda o, a, n: torch.ones(*n.shape[:-1], 1)),
            r"must return a float tensor of shape \(1,\)",
        ),
        (GearFamily(terminated=lambda o, a, n: torch.ones(n.shape[:-1], dtype=torch.bool)), r"its terminated\(\)"),
    ],
    ids=["ignores-task", "reports-but-ignores", "set-attr-misses", "wrong-reward", "reward-shape", "termination"],
)
def test_a_broken_env_or_function_is_refused_in_one_line(family, message):
    with pytest.raises(ValueError, match=message) as error:
        check_family_env(family)
    assert "\n" not in str(error.value)


def test_a_passed_check_is_remembered(monkeypatch):
    family = GearFamily(name="contract_cached")
    built = []
    make_env = family.make_env
    monkeypatch.setattr(family, "make_env", lambda **kw: built.append(1) or make_env(**kw))
    check_family_env(family)
    count = len(built)
    check_family_env(family)
    check_family_env(family, exact_reward=False)  # a weaker check than one already passed
    assert count > 0 and len(built) == count


def test_train_refuses_a_family_that_ignores_its_task_before_collecting(tmp_path):
    from mbmeta.runs.loop import run_training

    loop = LoopSettings(family="pendulum", run_dir=str(tmp_path / "run"), iterations=1, initial_episodes=1)
    family = PlainGymnasiumEnv(name="contract_plain")
    from mbmeta.envs import registry

    registry.register_family(family)
    try:
        loop = dataclasses.replace(loop, family=family.name)
        with pytest.raises(ValueError, match=r"does not report the task"):
            run_training(loop, logger=False, log=lambda line: None)
    finally:
        registry._FAMILIES.pop(family.name, None)
    assert not (tmp_path / "run" / "buffer.npz").exists()


def test_learned_reward_planning_needs_a_model_that_learns_it():
    family = GearFamily(name="contract_no_reward", reward=None)
    small = {"ensemble_size": 1, "hidden_sizes": [8], "reward_hidden": [8], "context_hidden": [8]}
    settings = dict(loop=LoopSettings(), trainer={}, family=family)
    learned = dataclasses.replace(AgentSettings(), exact_reward=False)
    check_settings(model=small, agent=learned, **settings)  # plans with the learned reward: no exact one needed
    with pytest.raises(ValueError, match=r"agent\.exact_reward is false .* model\.learn_reward is false"):
        check_settings(model={**small, "learn_reward": False}, agent=learned, **settings)
    with pytest.raises(ValueError, match=r"has no exact reward"):
        check_settings(model=small, agent=AgentSettings(), **settings)


@pytest.mark.parametrize("family_type", [PlainGymnasiumEnv, IgnoredTask], ids=["reports-nothing", "ignores-task"])
def test_collect_episodes_from_python_refuses_a_broken_family_before_any_step(family_type):
    """The same check as `mbmeta train`, for a user who collects with the library's collector directly."""
    from mbmeta.control.collection import collect_episodes

    family = family_type(name=f"contract_python_{family_type.__name__}")
    policy = lambda obs: np.zeros((obs.shape[0], 1), np.float32)  # noqa: E731
    with pytest.raises(ValueError, match=rf"family {family.name!r}: ") as error:
        collect_episodes(policy, 1, family=family, env_kwargs={"max_episode_steps": 5})
    assert "\n" not in str(error.value)


def test_envs_that_report_no_task_stop_a_collection_that_assigns_tasks():
    """User-built envs given with tasks: the labels cannot be checked, so nothing is recorded under them."""
    from mbmeta.control.collection import collect_episodes

    family = GearFamily(name="contract_user_envs")
    tasks = family.sample(np.random.default_rng(0), 2, "train")
    policy = lambda obs: np.zeros((obs.shape[0], 1), np.float32)  # noqa: E731
    plain = [lambda: gym.make("InvertedPendulum-v5", max_episode_steps=5)] * 2
    with pytest.raises(RuntimeError, match=r"assigned tasks? but reports? none in info\['task'\]; a family's env must"):
        collect_episodes(policy, 2, envs=plain, tasks=tasks)
    honest = [lambda: family.make_env(max_episode_steps=5)] * 2
    assert collect_episodes(policy, 2, envs=honest, tasks=tasks).buffer.num_episodes == 2
