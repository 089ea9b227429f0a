"""MPCAgent: the exact pendulum model swings up the real env; vector envs; guards against bad models and inputs."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import mbmeta.envs  # noqa: F401  (registers mbmeta/Pendulum-v0)
from mbmeta.control import MPCAgent
from mbmeta.control.plan_stats import PlanStats
from mbmeta.envs.pendulum import FAMILY, pendulum_dynamics
from mbmeta.planners import CEMPlanner, ICEMPlanner, Planner
from mbmeta.types import MetaDynamics, PlanResult, Prediction


class ExactPendulum:
    """The env's own dynamics as an adapted model: one member, zero variance, no learned reward."""

    ensemble_size = 1

    def __init__(self, mass: float = 1.0, length: float = 1.0, poison: torch.Tensor | None = None) -> None:
        self.mass, self.length = mass, length
        self.poison = poison  # [B] bool: environments whose predictions are NaN (a diverged model)

    def __call__(self, obs, action):
        mean = pendulum_dynamics(obs, action, self.mass, self.length)
        if self.poison is not None:
            mean = torch.where(self.poison.reshape(1, -1, *([1] * (mean.ndim - 2))), float("nan"), mean)
        return Prediction(mean, torch.zeros_like(mean), None)


class ExactPendulumModel:
    """A MetaDynamics that ignores its context: what a perfectly adapted model would be. Records its calls."""

    def __init__(self, poison=None) -> None:
        self.poison = poison
        self.contexts = []

    def adapt(self, context, mask=None, task=None):
        self.contexts.append((context, None if mask is None else mask.clone()))
        return ExactPendulum(poison=self.poison)


def pendulum_agent(model=None, planner=None, **kwargs) -> MPCAgent:
    planner = planner or CEMPlanner([-2.0], [2.0], population=64, elites=8, iterations=3)
    return MPCAgent(model or ExactPendulumModel(), planner, FAMILY.reward, horizon=15, context_size=4, **kwargs)


def angle(obs: np.ndarray) -> np.ndarray:
    return np.arctan2(obs[..., 1], obs[..., 0])


def test_exact_model_satisfies_the_protocol():
    assert isinstance(ExactPendulumModel(), MetaDynamics)


def test_swings_up_and_balances_the_real_pendulum():
    agent = pendulum_agent()
    env = gym.make("mbmeta/Pendulum-v0")  # a plain Gymnasium loop, as a user would write it
    obs, info = env.reset(seed=4)
    info_start = obs
    agent.reset()
    rewards, angles = [], []
    done = False
    while not done:
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(obs, action, next_obs, reward, terminated)
        rewards.append(reward)
        angles.append(float(angle(next_obs)))
        obs, done = next_obs, terminated or truncated
    env.close()
    assert len(rewards) == 200
    assert abs(angle(info_start)) > 2.5, "seed 4 starts hanging down, so this is a real swing-up"
    assert max(abs(a) for a in angles[-50:]) < 0.3
    assert np.mean(rewards[-50:]) > -0.05  # upright and still: each step's cost is θ² + 0.1 θdot² + ...
    # Hanging still would score about -7.8 per step (-1550); larger planners (N=200, H=30) reach about -570 here.
    assert sum(rewards) > -900


def test_vector_env_batched_act_and_observe_with_autoreset():
    n = 3
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("mbmeta/Pendulum-v0") for _ in range(n)])
    model = ExactPendulumModel()
    agent = pendulum_agent(model, planner=ICEMPlanner([-2.0], [2.0], population=64, elites=8, iterations=3))
    agent.reset(batch_size=n)
    obs, _ = envs.reset(seed=1)
    autoreset = np.zeros(n, dtype=bool)
    angles = []
    for _ in range(203):
        action = agent.act(obs)
        assert action.shape == (n, 1) and action.dtype == np.float32
        next_obs, reward, terminated, truncated, _ = envs.step(action)
        agent.observe(obs, action, next_obs, reward, terminated, valid=~autoreset)  # skip the reset step's transition
        autoreset = terminated | truncated
        agent.reset_envs(autoreset)
        angles.append(angle(next_obs))
        obs = next_obs
    envs.close()
    angles = np.array(angles)  # [steps, n]
    assert (np.abs(angles[150:200]) < 0.3).all(), "every environment of the batch balances"
    # Env step 200 (loop index 199) truncated all three and cleared the windows; step 201 was the autoreset step
    # (not recorded); steps 202 and 203 were recorded.
    windows = [int(model.contexts[i][1].sum()) for i in (199, 200, 201, 202)]
    assert windows == [4 * n, 0, 0, n] and agent.context[1].sum(dim=1).tolist() == [2] * n


def test_adapts_once_per_step_on_the_left_padded_window():
    model = ExactPendulumModel()
    agent = pendulum_agent(model)
    obs = np.array([1.0, 0.0, 0.0])
    for step in range(5):
        action = agent.act(obs)
        next_obs = obs + 0.1 * (step + 1)
        agent.observe(obs, action, next_obs, reward=-float(step))
        obs = next_obs
    assert len(model.contexts) == 5
    context, mask = model.contexts[2]  # adapted before the third action: two transitions seen
    assert mask.tolist() == [[False, False, True, True]]
    assert context.obs.shape == (1, 4, 3) and context.reward[0, 2:].tolist() == [0.0, -1.0]
    window, mask = agent.context
    assert mask.all() and window.reward[0].tolist() == [-1.0, -2.0, -3.0, -4.0]  # oldest first, K = 4 kept


class RecordingPlanner(Planner):
    """Deterministic stand-in planner: returns init + 0.5 (clipped) and records its inputs."""

    uses_carry = True

    def __init__(self) -> None:
        super().__init__([-2.0], [2.0])
        self.inits, self.carries = [], []

    def _optimise(self, objective, init, generator, carry):
        self.inits.append(init.clone())
        self.carries.append(carry)
        actions = self.clip(init + 0.5)
        return PlanResult(actions, objective(actions[:, None])[:, 0], 1), torch.stack([actions, actions], dim=1)


def test_warm_start_is_the_previous_plan_shifted_with_the_centre_appended():
    planner = RecordingPlanner()
    agent = pendulum_agent(planner=planner)
    obs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    agent.reset(batch_size=2)
    first = agent.act(obs)
    agent.act(obs)
    assert first.shape == (2, 1) and np.allclose(first, 0.5)
    assert torch.equal(planner.inits[0], torch.zeros(2, 15, 1))
    expected = torch.cat([torch.full((2, 14, 1), 0.5), torch.zeros(2, 1, 1)], dim=1)
    assert torch.equal(planner.inits[1], expected)
    assert planner.carries[0] is None and torch.equal(planner.carries[1], expected[:, None].expand(2, 2, 15, 1))
    agent.reset_envs([True, False])
    agent.act(obs)
    assert torch.equal(planner.inits[2][0], torch.zeros(15, 1)) and planner.inits[2][1, 0, 0] == 1.0


def test_non_finite_model_gives_finite_in_bounds_actions_and_a_warning():
    model = ExactPendulumModel(poison=torch.tensor([False, True]))
    agent = pendulum_agent(model)
    agent.reset(batch_size=2)
    obs = np.array([[-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    for _ in range(3):
        with pytest.warns(RuntimeWarning, match=r"no finite plan for environment\(s\) \[1\]"):
            action = agent.act(obs)
        assert np.isfinite(action).all() and (np.abs(action) <= 2.0).all()
        assert action[1, 0] == 0.0  # the fallback: the previous plan shifted (the centre, as nothing was planned)
    everything_broken = pendulum_agent(ExactPendulumModel(poison=torch.tensor([True])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action = everything_broken.act(np.array([1.0, 0.0, 0.0]))
    assert len(caught) == 1 and action.shape == (1,) and np.isfinite(action).all()


@pytest.mark.parametrize(
    "obs, message",
    [
        (np.zeros(4), r"obs must have shape \(1, 3\) or \(3,\), got \(4,\)"),
        (np.zeros((2, 3)), r"obs must have shape \(1, 3\) or \(3,\), got \(2, 3\); call reset\(batch_size=2\)"),
        (np.array([1.0, np.nan, 0.0]), r"obs contains NaN or inf \(expected shape \(1, 3\)"),
        (np.array([1.0, 0.0, np.inf]), "obs contains NaN or inf"),
        ("abc", "obs must be a float array"),
    ],
)
def test_bad_obs_raises(obs, message):
    agent = pendulum_agent()
    agent.act(np.array([1.0, 0.0, 0.0]))  # fixes O = 3
    with pytest.raises(ValueError, match=message):
        agent.act(obs)


def test_bad_observe_arguments_raise():
    agent = pendulum_agent()
    agent.reset(batch_size=2)
    obs = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"action must have shape \(2, 1\)"):
        agent.observe(obs, np.zeros((2, 2)), obs)
    with pytest.raises(ValueError, match=r"reward must have shape \(2,\)"):
        agent.observe(obs, np.zeros((2, 1)), obs, reward=np.zeros(3))
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\)"):
        agent.reset_envs([True])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="valid values are"):
        pendulum_agent(propagation="mean")
    with pytest.raises(ValueError, match="horizon must be > 0"):
        MPCAgent(ExactPendulumModel(), CEMPlanner([-2.0], [2.0]), horizon=0)


def test_seeded_agents_act_identically():
    a, b = pendulum_agent(seed=3), pendulum_agent(seed=3)
    obs = np.array([math.cos(2.0), math.sin(2.0), 0.5])
    assert np.array_equal(a.act(obs), b.act(obs))


@pytest.mark.parametrize(
    "adaptation, propagation, particles",
    [
        ("context", "tsinf", 4),
        ("context", "ts1", 2),
        ("context", "expectation", 1),
        ("gradient", "tsinf", 2),
        ("recurrent", "expectation", 1),
    ],
)
def test_from_checkpoint_plans_with_the_trained_model(tmp_path, adaptation, propagation, particles):
    pl = pytest.importorskip("pytorch_lightning")
    from mbmeta.models.normaliser import transition_statistics
    from mbmeta.training.module import MetaDynamicsModule
    from mbmeta.types import Transition

    module = MetaDynamicsModule(
        obs_dim=3,
        action_dim=1,
        adaptation=adaptation,
        ensemble_size=2,
        hidden_sizes=(16, 16),
        reward_hidden=(8,),
        context_hidden=(8,),
        gru_hidden=8,
    )
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(64, 3, generator=g)
    fake = Transition(
        obs, torch.rand(64, 1, generator=g) * 4 - 2, obs + 0.1, torch.randn(64, generator=g), obs[:, 0] > 9
    )
    module.fit_normaliser(transition_statistics(fake))
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    planner = CEMPlanner([-2.0], [2.0], population=16, elites=4, iterations=2)
    agent = MPCAgent.from_checkpoint(
        path, planner, None, map_location="cpu", horizon=5, context_size=3, propagation=propagation, particles=particles
    )
    agent.reset(batch_size=2)
    obs = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.5]], dtype=np.float32)
    for _ in range(3):
        action = agent.act(obs)
        assert action.shape == (2, 1) and np.isfinite(action).all() and (np.abs(action) <= 2).all()
        agent.observe(obs, action, obs * 0.9, reward=np.zeros(2))


# ----- plan_stats: what the loop and `mbmeta evaluate` log as plan/* ------------------------------------------


def test_counts_calls_sequences_and_planned_return_over_steps():
    agent = pendulum_agent()  # CEM population 64 × 3 iterations, H = 15
    agent.reset(batch_size=2)
    obs = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    for _ in range(4):
        agent.act(obs)
    stats = agent.plan_stats.summary()
    assert agent.plan_stats.calls == 4 and agent.plan_stats.env_steps == 8
    assert stats["plan/sequences_per_env_step"] == 64 * 3
    assert stats["plan/ms_per_call"] > 0 and stats["plan/ms_per_env_step"] == pytest.approx(
        stats["plan/ms_per_call"] / 2
    )
    assert stats["plan/sequence_steps_per_s"] == pytest.approx(8 * 64 * 3 * 15 / agent.plan_stats.seconds)
    # Pendulum rewards are costs in [-16.3, 0] per step: the planned return lies within H of them.
    assert -16 * 15 < stats["plan/planned_return_mean"] < 0
    assert stats["plan/fallback_fraction"] == 0.0


def test_stats_survive_reset_and_clear_forgets_them():
    agent = pendulum_agent()
    agent.act(np.array([1.0, 0.0, 0.0]))
    agent.reset(batch_size=1)
    assert agent.plan_stats.calls == 1
    agent.plan_stats.clear()
    assert agent.plan_stats.summary() == {}


def test_non_finite_plans_count_as_fallbacks_and_stay_out_of_the_planned_return():
    agent = pendulum_agent(ExactPendulumModel(poison=torch.tensor([False, True])))
    agent.reset(batch_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(2):
            agent.act(np.array([[-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]))
    stats = agent.plan_stats.summary()
    assert stats["plan/fallback_fraction"] == 0.5
    assert np.isfinite(stats["plan/planned_return_mean"])


def test_all_plans_non_finite_gives_nan_planned_return():
    stats = PlanStats()
    stats.record(
        batch=1, horizon=3, rows=10, returns=torch.tensor([float("nan")]), finite=torch.tensor([False]), seconds=0.1,
        fallbacks=1,
    )  # fmt: skip
    summary = stats.summary()
    assert np.isnan(summary["plan/planned_return_mean"]) and summary["plan/fallback_fraction"] == 1.0


# ----- the collector's tensor path and a user's NumPy loop are one implementation ------------------------------


def small_context_model():
    from mbmeta.models import MetaDynamicsModel, transition_statistics
    from mbmeta.types import Transition

    model = MetaDynamicsModel(3, 1, adaptation="context", ensemble_size=2, hidden_sizes=(16, 16), latent_dim=4)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(200, 3, generator=g)
    data = Transition(obs, torch.rand(200, 1, generator=g) * 4 - 2, obs * 0.9, torch.randn(200, generator=g), None)
    model.normaliser.fit(transition_statistics(data))
    return model.eval()


def test_collector_tensor_path_gives_the_actions_of_the_numpy_loop():
    from mbmeta.control.collection import collect_episodes

    model = small_context_model()
    planner = CEMPlanner([-2.0], [2.0], population=16, elites=4, iterations=2)
    make = lambda: MPCAgent(model, planner, FAMILY.reward, horizon=5, context_size=3, seed=7)  # noqa: E731
    tasks = FAMILY.sample(np.random.default_rng(0), 4, "train")
    env_fns = [lambda: gym.make(FAMILY.env_id, max_episode_steps=5) for _ in range(2)]

    # the collector: two waves of two 5-step episodes with an autoreset step between them (continuous mode)
    collected = collect_episodes(make(), 4, envs=env_fns, tasks=tasks, seed=0).buffer

    # a user's loop over the NumPy API doing the same: valid=~autoreset, reset_envs after each step
    agent = make()
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    envs.set_attr("task", tasks[:2])
    obs, _ = envs.reset(seed=0)
    agent.reset(batch_size=2)
    autoreset = np.zeros(2, dtype=bool)
    actions = []
    for step in range(11):
        action = agent.act(obs.astype(np.float32))
        next_obs, reward, terminated, truncated, _ = envs.step(action)
        agent.observe(obs, action, next_obs, reward, terminated, valid=~autoreset)
        agent.reset_envs(autoreset | terminated | truncated)
        if not autoreset.any():
            actions.append(action)
        if step == 4:
            envs.set_attr("task", tasks[2:])  # the next episodes' tasks, applied by the autoreset step
        autoreset = terminated | truncated
        obs = next_obs
    envs.close()
    actions = np.stack(actions)  # [10, 2, 1]: steps 0-4 are episodes 0 and 1, steps 6-10 episodes 2 and 3
    expected = np.concatenate([actions[:5, 0], actions[:5, 1], actions[5:, 0], actions[5:, 1]])
    assert np.array_equal(collected.action, expected)  # bit for bit, context windows and warm starts included
    assert len(np.unique(expected)) > 10  # the actions are planned, not constant


def test_tensor_path_takes_and_returns_tensors_on_the_agent_device():
    agent = pendulum_agent(seed=2)
    numpy_agent = pendulum_agent(seed=2)
    obs = np.array([[1.0, 0.0, 0.3]], dtype=np.float32)
    action = agent.act_tensor(torch.from_numpy(obs))
    assert isinstance(action, torch.Tensor) and action.dtype == torch.float32 and action.shape == (1, 1)
    assert action.device == agent.device
    assert np.array_equal(action.numpy(), numpy_agent.act(obs))
    with pytest.raises(ValueError, match=r"obs must have shape \(1, 3\), got \(2, 3\)"):
        agent.act_tensor(torch.zeros(2, 3))


def test_numpy_observe_validates_once_at_its_boundary():
    agent = pendulum_agent()
    agent.reset(batch_size=2)
    obs = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"next_obs contains NaN or inf \(expected shape \(2, 3\)\)"):
        agent.observe(obs, np.zeros((2, 1)), np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"action contains NaN or inf"):
        agent.observe(obs, np.array([[np.inf], [0.0]]), obs)
    # a rejected transition leaves the agent untouched: not even the observation size is learned from it
    assert agent.obs_dim is None or not agent.context[1].any()
    agent.observe(obs, np.zeros((2, 1)), obs)
    assert agent.context[1].sum() == 2, "the first accepted transition is the only one in the windows"
