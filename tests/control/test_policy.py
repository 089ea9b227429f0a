"""The Policy base class (declared capabilities, no-op hooks), plain callables, and the collector's boundary checks."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbmeta.control.collection import collect_episodes
from mbmeta.control.policy import CallablePolicy, Policy, as_policy
from mbmeta.envs import get_family
from mbmeta.types import Transition

FAMILY = get_family("pendulum")


def env_fns(limits, wrapper=None):
    """Pendulum envs with the given time limits, optionally wrapped (``wrapper(env, index)``)."""

    def make(limit, index):
        env = gym.make(FAMILY.env_id, max_episode_steps=limit)
        return env if wrapper is None else wrapper(env, index)

    return [functools.partial(make, limit, i) for i, limit in enumerate(limits)]


def tasks(n):
    return FAMILY.sample(np.random.default_rng(0), n, "train")


class Zeros(Policy):
    """Only act_tensor: every hook is the base class's no-op."""

    def __init__(self):
        self.seen = []

    def act_tensor(self, obs, task=None):
        self.seen.append(obs)
        return torch.zeros(obs.shape[0], 1)


def test_base_declares_nothing_and_its_hooks_are_no_ops():
    policy = Zeros()
    assert not Policy.takes_task and not Policy.lockstep and Policy.device == torch.device("cpu")
    obs = torch.zeros(2, 3)
    transition = Transition(obs, torch.zeros(2, 1), obs, torch.zeros(2), torch.zeros(2, dtype=torch.bool))
    assert policy.reset(2) is None
    assert policy.observe_tensor(transition, torch.ones(2, dtype=torch.bool)) is None
    assert policy.reset_envs(torch.ones(2, dtype=torch.bool)) is None
    with pytest.raises(NotImplementedError, match="Policy must implement act_tensor"):
        Policy().act_tensor(obs)


def test_a_policy_with_only_act_tensor_collects_and_sees_float32_tensors():
    policy = Zeros()
    res = collect_episodes(policy, 3, envs=env_fns([4, 6]), tasks=tasks(3))
    assert res.buffer.num_transitions == 4 + 6 + 4 and not res.buffer.action.any()
    assert all(o.dtype == torch.float32 and o.shape == (2, 3) for o in policy.seen)
    # the policy sees exactly the float32 observations the buffer records (one conversion for both)
    first = res.buffer.episode(0)["obs"][0]
    assert np.array_equal(policy.seen[0][0].numpy(), first)


def test_plain_callables_are_wrapped_and_other_objects_refused():
    fn = lambda obs: np.zeros((len(obs), 1))  # noqa: E731
    wrapped = as_policy(fn)
    assert isinstance(wrapped, CallablePolicy) and not wrapped.takes_task
    action = wrapped.act_tensor(torch.ones(3, 2))
    assert action.dtype == torch.float32 and action.shape == (3, 1)
    assert as_policy(wrapped) is wrapped
    assert CallablePolicy(lambda obs, task: task[:, :1], takes_task=True).act_tensor(
        torch.ones(2, 3), torch.tensor([[4.0], [5.0]])
    ).tolist() == [[4.0], [5.0]]

    class DuckTyped:  # the old duck-typed protocol: an act method, no Policy base
        def act(self, obs):
            return np.zeros((len(obs), 1))

    with pytest.raises(TypeError, match="policy must subclass mbmeta.control.policy.Policy or be a plain callable"):
        collect_episodes(DuckTyped(), 1, envs=env_fns([3]), tasks=tasks(1))


def test_actions_are_checked_once_where_they_enter():
    class Returns(Policy):
        def __init__(self, value):
            self.value = value

        def act_tensor(self, obs, task=None):
            return self.value

    with pytest.raises(TypeError, match=r"act_tensor must return a Tensor of shape \(1, 1\)"):
        collect_episodes(Returns(np.zeros((1, 1))), 1, envs=env_fns([3]), tasks=tasks(1))
    with pytest.raises(ValueError, match=r"policy returned actions of shape \(1, 2\), expected \(1, 1\)"):
        collect_episodes(Returns(torch.zeros(1, 2)), 1, envs=env_fns([3]), tasks=tasks(1))
    with pytest.raises(ValueError, match=r"policy returned NaN or inf actions for sub-environment\(s\) \{0: \[0\]\}$"):
        collect_episodes(Returns(torch.tensor([[float("inf")]])), 1, envs=env_fns([3]), tasks=tasks(1))


class NaNAfter(gym.Wrapper):
    """Sub-environment ``index`` returns a NaN observation from its third step on."""

    def __init__(self, env, index, bad_index=1):
        super().__init__(env)
        self.bad, self.steps = index == bad_index, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.bad and self.steps >= 3:
            obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


def test_observations_are_checked_once_where_they_enter():
    seen = []
    policy = CallablePolicy(lambda obs: seen.append(obs) or np.zeros((len(obs), 1)))
    message = r"^sub-environment\(s\) \{1: \[0, 1, 2\]\} returned observations with NaN or inf$"  # one line
    with pytest.raises(ValueError, match=message):
        collect_episodes(policy, 2, envs=env_fns([8, 8], NaNAfter), tasks=tasks(2))
    assert len(seen) == 3 and all(np.isfinite(o).all() for o in seen)  # the policy never saw the NaN


class LyingTask(gym.Wrapper):
    """Sub-environment 1 reports a mass other than its own from its second step on."""

    def __init__(self, env, index):
        super().__init__(env)
        self.lies, self.steps = index == 1, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.lies and self.steps >= 2:
            info = {**info, "task": {**info["task"], "mass": info["task"]["mass"] + 0.01}}
        return obs, reward, terminated, truncated, info


def test_an_environment_reporting_another_task_stops_the_collection():
    with pytest.raises(RuntimeError, match=r"sub-environment 1 reports task \{'mass': .* mix tasks"):
        collect_episodes(Zeros(), 2, envs=env_fns([6, 6], LyingTask), tasks=tasks(2))
    # the same environments, honest: no error (the check compares to within 1e-6, so float32 round trips pass)
    collect_episodes(Zeros(), 2, envs=env_fns([6, 6]), tasks=tasks(2))
