"""MPCAgent validates before it changes state: a refused call leaves it as it was, reset() returns it to a clean
state, observe() refuses bad rewards, and constructor arguments are checked with messages naming them."""

import numpy as np
import pytest
import torch

from mbmeta.control.agent import MPCAgent
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.planners import make_planner


class _UndeclaredSize:
    """A user's model that does not declare obs_dim: the agent learns O from the first accepted call."""

    def __init__(self, model):
        self.model = model
        self.ensemble_size = model.ensemble_size

    def adapt(self, context, mask=None, task=None):
        return self.model.adapt(context, mask, task)


def _agent(declare: bool = True, **kwargs) -> MPCAgent:
    model = MetaDynamicsModel(3, 1, adaptation="context", ensemble_size=2, hidden_sizes=(8,), learn_reward=False)
    planner = make_planner("cem", low=[-2.0], high=[2.0], population=8, elites=2, iterations=1)
    reward = lambda obs, action, next_obs: -next_obs[..., 0]  # noqa: E731
    dynamics = model if declare else _UndeclaredSize(model)
    return MPCAgent(dynamics, planner, reward, **{"horizon": 3, "context_length": 4, **kwargs})


@pytest.mark.parametrize("declare", [True, False], ids=["declared O", "learned O"])
def test_a_wrong_width_first_observation_does_not_poison_the_agent(declare):
    agent = _agent(declare)
    with pytest.raises((ValueError, RuntimeError)):
        agent.act(np.zeros(5, dtype=np.float32))
    assert agent.act(np.zeros(3, dtype=np.float32)).shape == (1,)
    agent.reset()
    assert agent.act(np.zeros(3, dtype=np.float32)).shape == (1,)


def test_a_refused_observe_changes_nothing():
    agent = _agent()
    obs = np.zeros(3, dtype=np.float32)
    agent.observe(obs, np.zeros(1), obs + 1)
    window, mask = (t.clone() for t in agent.context[0]), agent.context[1].clone()
    window = list(window)
    with pytest.raises(ValueError, match="next_obs"):
        agent.observe(obs, np.zeros(1), np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="reward contains NaN"):
        agent.observe(obs, np.zeros(1), obs, reward=[float("nan")])
    for before, after in zip(window, agent.context[0], strict=True):
        assert torch.equal(before, after)
    assert torch.equal(mask, agent.context[1])


def test_reset_forgets_a_learned_observation_size():
    agent = _agent(declare=False)
    agent.observe(np.zeros(3, dtype=np.float32), np.zeros(1), np.ones(3, dtype=np.float32))
    assert agent.obs_dim == 3
    agent.reset()
    assert agent.obs_dim is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"horizon": "5"}, r"horizon must be > 0 \(an int\), got '5'"),
        ({"horizon": 0}, r"horizon must be > 0 \(an int\), got 0"),
        ({"particles": 2.5}, r"particles must be > 0 \(an int\), got 2\.5"),
        ({"discount": 1.5}, r"discount must be a number in \(0, 1\], got 1\.5"),
        ({"disagreement_penalty": -1}, r"disagreement_penalty must be a number >= 0, got -1"),
        ({"seed": "0"}, r"seed must be an int, got '0'"),
    ],
)
def test_constructor_arguments_are_checked_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _agent(**kwargs)
