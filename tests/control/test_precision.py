"""Planning speed options: bf16 model evaluation (``precision``) and skipping a learned reward head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbmeta.control import MPCAgent, RolloutObjective
from mbmeta.control.factory import make_agent
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.pendulum import FAMILY as PENDULUM
from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.planners import CEMPlanner
from mbmeta.types import Prediction, Transition

A = torch.tensor([[1.0, 0.1], [-0.1, 0.95]])
BM = torch.tensor([[0.1, 0.0], [0.05, 0.1]])


class LinearModel:
    """next = A x + B u (matmuls, so autocast changes them), two identical members; records what it saw."""

    ensemble_size = 2
    can_skip_reward = True  # declares that __call__ takes with_reward

    def __init__(self) -> None:
        self.dtypes: list[torch.dtype] = []
        self.flags: list[bool] = []

    def __call__(self, obs, action, with_reward=True):
        self.flags.append(with_reward)
        mean = obs @ A.T + action @ BM.T
        self.dtypes.append(mean.dtype)
        return Prediction(mean, torch.zeros_like(mean), -(mean.float() ** 2).sum(-1) if with_reward else None)


class TwoArgumentModel:
    """Only the protocol's ``(obs, action)``: must keep working when an exact reward is given."""

    ensemble_size = 1

    def __call__(self, obs, action):
        return Prediction(obs + 0.1 * action, torch.zeros_like(obs), None)


def quadratic(obs, action, next_obs):
    return -(next_obs**2).sum(-1) - 0.1 * (action**2).sum(-1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def plan(precision: str, model=None):
    model = model or LinearModel()
    start = torch.tensor([[1.0, -0.5], [-0.8, 0.3]])
    objective = RolloutObjective(
        model, start, quadratic, propagation="expectation", particles=1, generator=gen(1), precision=precision
    )
    planner = CEMPlanner([-1.0, -1.0], [1.0, 1.0], population=128, elites=12, iterations=4)
    return planner.plan(objective, torch.zeros(2, 8, 2), generator=gen(2)), start, model


def fp32_returns(start, actions):
    objective = RolloutObjective(LinearModel(), start, quadratic, propagation="expectation", particles=1)
    return objective(actions[:, None])[:, 0]


def test_bf16_runs_the_model_in_bf16_and_plans_finite_in_bound_float32_actions():
    result, _, model = plan("bf16")
    assert set(model.dtypes) == {torch.bfloat16}, "the model's matmuls ran under bf16 autocast"
    assert result.actions.dtype == torch.float32 and result.returns.dtype == torch.float32
    assert torch.isfinite(result.actions).all() and torch.isfinite(result.returns).all()
    assert (result.actions.abs() <= 1).all()


def test_bf16_plans_as_well_as_fp32_on_the_linear_system():
    fp32, start, model = plan("fp32")
    assert set(model.dtypes) == {torch.float32}
    bf16, _, _ = plan("bf16")
    # Scored exactly (fp32), the bf16 plan is within 2% of the fp32 plan's return, and the plans are close.
    exact32, exact16 = fp32_returns(start, fp32.actions), fp32_returns(start, bf16.actions)
    assert (exact16 >= exact32 - 0.02 * exact32.abs()).all(), (exact16, exact32)
    assert (bf16.actions - fp32.actions).abs().max() < 0.2
    # The objective itself: the same actions score alike in both precisions (bf16 keeps ~3 significant digits).
    actions = torch.rand(2, 50, 8, 2, generator=gen(3)) * 2 - 1
    scores = {
        p: RolloutObjective(LinearModel(), start, quadratic, propagation="expectation", particles=1, precision=p)(
            actions
        )
        for p in ("fp32", "bf16")
    }
    torch.testing.assert_close(scores["bf16"], scores["fp32"], rtol=2e-2, atol=1e-2)
    assert scores["bf16"].dtype == torch.float32


def test_exact_reward_runs_in_float32_outside_autocast():
    seen = []

    def reward(obs, action, next_obs):
        seen.append((next_obs.dtype, torch.is_autocast_enabled("cpu")))
        return quadratic(obs, action, next_obs)

    objective = RolloutObjective(LinearModel(), torch.zeros(1, 2), reward, particles=2, precision="bf16")
    objective(torch.zeros(1, 3, 4, 2))
    assert seen and set(seen) == {(torch.float32, False)}


@pytest.mark.parametrize("propagation, particles", [("expectation", 1), ("tsinf", 2), ("ts1", 2)])
def test_exact_reward_skips_the_learned_reward_head(propagation, particles):
    model = LinearModel()
    RolloutObjective(model, torch.zeros(1, 2), quadratic, propagation=propagation, particles=particles)(
        torch.zeros(1, 3, 4, 2)
    )
    assert model.flags and not any(model.flags)
    learned = LinearModel()  # no reward_fn: the learned reward is needed
    RolloutObjective(learned, torch.zeros(1, 2), None, propagation=propagation, particles=particles)(
        torch.zeros(1, 3, 4, 2)
    )
    assert learned.flags and all(learned.flags)


class UndeclaredModel(LinearModel):
    """Takes with_reward but does not declare it: the objective must not pass it (declared, never discovered)."""

    can_skip_reward = False


def test_the_reward_head_is_skipped_only_when_the_model_declares_it():
    model = UndeclaredModel()
    RolloutObjective(model, torch.zeros(1, 2), quadratic, particles=2)(torch.zeros(1, 3, 4, 2))
    assert model.flags and all(model.flags)


def test_a_real_adapted_model_declares_it_and_the_agent_skips_its_reward_net():
    model = small_pendulum_model()
    calls = []
    original = model.reward_net.grouped_forward

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.reward_net.grouped_forward = counting
    planner = CEMPlanner([-2.0], [2.0], population=16, elites=4, iterations=2)
    with torch.no_grad():
        context = Transition(
            torch.zeros(1, 3, 3), torch.zeros(1, 3, 1), torch.zeros(1, 3, 3), torch.zeros(1, 3), torch.zeros(1, 3) > 0
        )
        assert model.adapt(context).can_skip_reward
    exact = MPCAgent(model, planner, PENDULUM.reward, horizon=4, context_size=3)
    exact.act(np.array([1.0, 0.0, 0.5], dtype=np.float32))
    assert calls == [], "an exact reward: the learned reward net must not run while planning"
    learned = MPCAgent(model, planner, None, horizon=4, context_size=3)
    learned.act(np.array([1.0, 0.0, 0.5], dtype=np.float32))
    assert calls, "no exact reward: planning needs the learned reward"


def test_two_argument_models_still_work_with_an_exact_reward():
    returns = RolloutObjective(TwoArgumentModel(), torch.zeros(1, 2), quadratic, particles=1)(torch.ones(1, 3, 4, 2))
    assert returns.shape == (1, 3) and torch.isfinite(returns).all()


def test_bad_precision_raises():
    with pytest.raises(ValueError, match=r"valid values are \['fp32', 'bf16'\]"):
        RolloutObjective(LinearModel(), torch.zeros(1, 2), quadratic, particles=2, precision="fp16")
    with pytest.raises(ValueError, match=r"precision 'half'"):
        MPCAgent(_Adaptable(), CEMPlanner([-1.0], [1.0]), precision="half")


class _Adaptable:
    def adapt(self, context, mask=None, task=None):
        return TwoArgumentModel()


def small_pendulum_model() -> MetaDynamicsModel:
    model = MetaDynamicsModel(3, 1, 2, adaptation="context", ensemble_size=3, hidden_sizes=(32, 32), latent_dim=4)
    g = gen(4)
    obs = torch.randn(200, 3, generator=g)
    data = Transition(obs, torch.rand(200, 1, generator=g) * 4 - 2, obs * 0.9, torch.randn(200, generator=g), None)
    model.normaliser.fit(transition_statistics(data))
    return model.eval()


def test_agent_plans_with_a_real_model_in_bf16():
    model = small_pendulum_model()
    dtypes = []
    original = model.dynamics_net.grouped_forward

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        dtypes.append(out.dtype)
        return out

    model.dynamics_net.grouped_forward = recording
    agent = MPCAgent(
        model,
        CEMPlanner([-2.0], [2.0], population=32, elites=4, iterations=2),
        PENDULUM.reward,
        horizon=5,
        context_size=3,
        precision="bf16",
    )
    obs = np.array([1.0, 0.0, 0.5], dtype=np.float32)
    for _ in range(3):
        action = agent.act(obs)
        assert action.dtype == np.float32 and action.shape == (1,)
        assert np.isfinite(action).all() and abs(float(action[0])) <= 2.0
        next_obs = obs * 0.9
        agent.observe(obs, action, next_obs)
        obs = next_obs
    assert dtypes and set(dtypes) == {torch.bfloat16}


def test_make_agent_passes_the_precision_setting():
    assert AgentSettings().precision == "fp32"
    agent = make_agent(small_pendulum_model(), PENDULUM, AgentSettings(precision="bf16"))
    assert agent.objective_settings["precision"] == "bf16"
