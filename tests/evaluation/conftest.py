"""Shared pieces of the evaluation unit tests: the pendulum (cheap MuJoCo), its random data and a tiny model."""

import dataclasses

import pytest

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.control.settings import AgentSettings
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks
from mbmeta.training.module import MetaDynamicsModule

# Only fields that stay put when the planner settings change shape: a short horizon keeps planning cheap.
FAST_AGENT = dataclasses.replace(AgentSettings(), horizon=2)


@pytest.fixture(scope="session")
def pendulum():
    return get_family("pendulum")


@pytest.fixture(scope="session")
def pendulum_buffer(pendulum):
    """Two random-action episodes (200 steps each) on two different test tasks."""
    tasks = evaluation_tasks(pendulum, "test")[:2]
    policy = RandomPolicy(pendulum.action_space, seed=0)
    return collect_episodes(policy, 2, family=pendulum, tasks=tasks, num_envs=2, seed=0).buffer


def tiny_module(buffer, adaptation: str = "context", seed: int = 0, **overrides) -> MetaDynamicsModule:
    """A small untrained model with its normaliser fitted on ``buffer``."""
    sizes = dict(ensemble_size=2, hidden_sizes=(16, 16), reward_hidden=(8,), context_hidden=(8,), latent_dim=3)
    module = MetaDynamicsModule(
        buffer.obs_dim, buffer.action_dim, buffer.task_dim, adaptation=adaptation, seed=seed, **{**sizes, **overrides}
    )
    module.fit_normaliser(buffer.statistics())
    return module.eval()


@pytest.fixture(scope="session")
def make_tiny_module():
    return tiny_module


@pytest.fixture(scope="session")
def fast_agent():
    return FAST_AGENT
