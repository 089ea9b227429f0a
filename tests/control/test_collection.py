import functools

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbmeta.control.agent import MPCAgent
from mbmeta.control.collection import CallablePolicy, Policy, RandomPolicy, collect_episodes
from mbmeta.control.vector_envs import make_vector_env
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import TaskParams, get_family
from mbmeta.envs.pendulum import pendulum_dynamics
from mbmeta.planners import CEMPlanner
from mbmeta.types import Prediction


@pytest.fixture(scope="module")
def family():
    return get_family("pendulum")


@pytest.fixture(scope="module")
def action_space(family):
    env = family.make_env()
    yield env.action_space
    env.close()


def train_tasks(family, n, seed=0):
    return family.sample(np.random.default_rng(seed), n, "train")


def short_env_fns(family, limits):
    """Pendulum envs whose time limits differ, so their episodes end at different steps."""
    # "module:id" makes gym.make import mbmeta.envs first, so spawned worker processes know the id too
    return [functools.partial(gym.make, f"mbmeta.envs:{family.env_id}", max_episode_steps=n) for n in limits]


def assert_no_lost_or_mixed_transitions(buf, expected_lengths=None):
    lengths = buf.episode_lengths
    assert buf.num_transitions == lengths.sum()
    if expected_lengths is not None:
        assert sorted(lengths.tolist()) == sorted(expected_lengths)
    for e in range(buf.num_episodes):
        ep = buf.episode(e)
        np.testing.assert_array_equal(ep["next_obs"][:-1], ep["obs"][1:])  # continuity inside the episode
        assert not (ep["terminated"][:-1] | ep["truncated"][:-1]).any()
        assert ep["truncated"][-1] or ep["terminated"][-1]
        assert abs(ep["obs"][0, 2]) <= 1.0  # the pendulum resets with |theta_dot| <= 1: a true first step


def max_physics_error(buf, e, task):
    ep = {k: torch.tensor(v, dtype=torch.float64) for k, v in buf.episode(e).items()}
    pred = pendulum_dynamics(ep["obs"], ep["action"], task["mass"], task["length"])
    return (pred - ep["next_obs"]).abs().max().item()


def test_each_episode_runs_and_is_recorded_under_its_own_task(family, action_space):
    tasks = train_tasks(family, 5) + family.sample(np.random.default_rng(1), 2, "test")
    res = collect_episodes(
        RandomPolicy(action_space, seed=0), 7, envs=short_env_fns(family, [30, 30, 30]), family=family, tasks=tasks
    )
    buf = res.buffer
    assert buf.num_episodes == 7 and buf.family == "pendulum" and buf.env_id == family.env_id
    assert sorted(s.launch for s in res.episodes) == list(range(7))
    other = {"mass": 0.2, "length": 1.8}
    for s in res.episodes:
        assert s.task == tasks[s.launch].as_dict()
        assert buf.task(s.episode) == tasks[s.launch]
        # the transitions obey the physics of the episode's own task, not another's
        assert max_physics_error(buf, s.episode, s.task) < 1e-4
        assert max_physics_error(buf, s.episode, other) > 1e-3
        ep = buf.episode(s.episode)
        assert s.episode_return == pytest.approx(float(ep["reward"].astype(np.float64).sum()), rel=1e-5)
        assert s.length == 30 and not s.terminated
    assert_no_lost_or_mixed_transitions(buf, [30] * 7)


def test_episodes_of_different_lengths_are_neither_lost_nor_mixed(family, action_space):
    limits = [7, 11, 13]
    res = collect_episodes(
        RandomPolicy(action_space, seed=1), 10, envs=short_env_fns(family, limits), tasks=train_tasks(family, 10)
    )
    counts = {}
    for s in res.episodes:
        counts[s.env_index] = counts.get(s.env_index, 0) + 1
        assert s.length == limits[s.env_index]
        assert max_physics_error(res.buffer, s.episode, s.task) < 1e-4
    # continuous refilling: the env with the shortest episodes ran the most of them
    assert counts[0] > counts[2]
    assert_no_lost_or_mixed_transitions(res.buffer, [limits[s.env_index] for s in res.episodes])


def test_collection_is_deterministic_given_the_seed(family, action_space):
    def run(seed):
        return collect_episodes(
            RandomPolicy(action_space, seed=seed), 4, envs=short_env_fns(family, [9, 12]), family=family, seed=seed
        )

    a, b, c = run(3), run(3), run(4)
    for name in ("obs", "action", "reward", "next_obs", "truncated"):
        np.testing.assert_array_equal(a.buffer.field(name), b.buffer.field(name))
    np.testing.assert_array_equal(a.buffer.tasks, b.buffer.tasks)
    assert a.episodes == b.episodes
    assert not np.array_equal(a.buffer.obs, c.buffer.obs)


def test_family_builds_envs_and_samples_tasks_from_the_split(family, action_space):
    res = collect_episodes(RandomPolicy(action_space), 3, family="pendulum", num_envs=2, split="test", seed=0)
    assert res.buffer.episode_lengths.tolist() == [family.episode_steps] * 3
    for s in res.episodes:
        assert family.in_split(TaskParams.from_dict(s.task), "test")
    assert_no_lost_or_mixed_transitions(res.buffer)


def test_appends_to_an_existing_buffer_and_reuses_a_vector_env(family, action_space):
    buf = EpisodeBuffer()
    envs = make_vector_env(short_env_fns(family, [5, 5]))
    try:
        collect_episodes(RandomPolicy(action_space), 2, envs=envs, family=family, buffer=buf, seed=0)
        collect_episodes(RandomPolicy(action_space), 3, envs=envs, family=family, buffer=buf, seed=1)
        assert not envs.closed
    finally:
        envs.close()
    assert buf.num_episodes == 5 and buf.num_transitions == 25
    with pytest.raises(ValueError, match="AutoresetMode.NEXT_STEP"):
        collect_episodes(
            RandomPolicy(action_space),
            1,
            envs=gym.vector.SyncVectorEnv(
                short_env_fns(family, [5]), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
            ),
            family=family,
        )


class ContextAgent(Policy):
    """A stateful policy: keeps a per-env context (every row, ignoring ``valid``) and checks what it is shown."""

    def __init__(self, action_dim):
        self.action_dim = action_dim
        self.context = None
        self.resets = []
        self.env_resets = []
        self.wrong_context = 0

    def reset(self, batch_size):
        self.resets.append(batch_size)
        self.context = [[] for _ in range(batch_size)]

    def act_tensor(self, obs, task=None):
        assert isinstance(obs, torch.Tensor) and obs.dtype == torch.float32 and obs.device == self.device
        # the context of env i must end where its current observation starts (or be empty at an episode start)
        for i, ctx in enumerate(self.context):
            if ctx and not torch.equal(ctx[-1][2], obs[i]):
                self.wrong_context += 1
        return torch.sin(obs[:, :1] * 3.0).tile(1, self.action_dim)

    def observe_tensor(self, transition, valid):
        for i in range(len(self.context)):
            self.context[i].append((transition.obs[i], transition.action[i], transition.next_obs[i]))


class RecordingAgent(ContextAgent):
    """With the MPC agent's per-env reset: the collector's reset_envs after an autoreset step must clear the row."""

    def reset_envs(self, mask):
        self.env_resets.append(mask.nonzero().flatten().tolist())
        for i in mask.nonzero().flatten().tolist():
            self.context[i] = []


class LockstepAgent(ContextAgent):
    """Cannot forget one environment (no reset_envs), so it declares ``lockstep``."""

    lockstep = True


def test_stateful_policy_hooks_continuous(family):
    agent = RecordingAgent(1)
    res = collect_episodes(agent, 6, envs=short_env_fns(family, [6, 9]), tasks=train_tasks(family, 6))
    assert agent.resets == [2]
    assert agent.env_resets  # told to forget each env right after its autoreset step
    # every act() saw contexts continuous with the current observation; idle envs (after their last episode)
    # carry stale contexts and are not counted because collection stops when they are all idle
    assert agent.wrong_context == 0
    assert_no_lost_or_mixed_transitions(res.buffer)


class AgentWithExtras(RecordingAgent):
    """Uses reward/terminated/valid from observe_tensor, like MPCAgent."""

    def __init__(self, action_dim):
        super().__init__(action_dim)
        self.invalid_rows = 0
        self.rewards = []

    def observe_tensor(self, transition, valid):
        obs, action, next_obs, reward, terminated = transition
        assert reward.shape == terminated.shape == valid.shape == (len(obs),)
        assert reward.dtype == torch.float32 and terminated.dtype == valid.dtype == torch.bool
        self.invalid_rows += int((~valid).sum())
        self.rewards.append(reward[valid].numpy())
        for i in valid.nonzero().flatten().tolist():
            self.context[i].append((obs[i], action[i], next_obs[i]))


def test_observe_gets_rewards_and_the_valid_mask(family):
    agent = AgentWithExtras(1)
    res = collect_episodes(agent, 4, envs=short_env_fns(family, [5, 8]), tasks=train_tasks(family, 4))
    assert agent.wrong_context == 0
    # one autoreset row per episode that was followed by another step (env 0 restarts twice, env 1 at least once)
    assert agent.invalid_rows >= 3
    seen = np.concatenate(agent.rewards)
    assert np.isin(res.buffer.reward, seen.astype(np.float32)).all()


def test_pass_task_gives_act_each_envs_own_task(family):
    def act(obs, task):
        return (task[:, :1] - 1.0).astype(np.float32)  # action encodes the mass the policy was told

    tasks = train_tasks(family, 6)
    policy = CallablePolicy(act, takes_task=True)
    res = collect_episodes(policy, 6, envs=short_env_fns(family, [5, 7, 9]), tasks=tasks, pass_task=True)
    for s in res.episodes:
        np.testing.assert_allclose(res.buffer.episode(s.episode)["action"], s.task["mass"] - 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"pass_task=True but the policy \(CallablePolicy\) does not take the task"):
        collect_episodes(lambda obs: obs[:, :1], 1, envs=short_env_fns(family, [5]), tasks=tasks, pass_task=True)
    with pytest.raises(ValueError, match=r"policy \(RecordingAgent\) does not take the task"):
        collect_episodes(RecordingAgent(1), 1, envs=short_env_fns(family, [5]), tasks=tasks, pass_task=True)


def test_stateful_policy_without_per_env_reset_runs_in_lockstep_waves(family):
    agent = LockstepAgent(1)
    res = collect_episodes(agent, 5, envs=short_env_fns(family, [6, 9]), tasks=train_tasks(family, 5))
    assert agent.resets == [2, 2, 2]  # waves of 2, 2, 1 episodes
    assert sorted(s.launch for s in res.episodes) == list(range(5))
    assert_no_lost_or_mixed_transitions(res.buffer, [6, 9, 6, 9, 6])


def test_min_transitions_starts_episodes_until_the_budget_in_steps_is_met(family, action_space):
    limits, target = [5, 7, 9], 30
    plain = collect_episodes(RandomPolicy(action_space), 3, envs=short_env_fns(family, limits), family=family)
    assert plain.buffer.num_episodes == 3 and plain.buffer.num_transitions == 21  # episodes alone: 21 < 30
    res = collect_episodes(
        RandomPolicy(action_space), 3, envs=short_env_fns(family, limits), family=family, min_transitions=target
    )
    buf = res.buffer
    assert target <= buf.num_transitions < target + sum(limits)  # at most one more episode per environment
    assert buf.num_episodes > 3 and sorted(s.launch for s in res.episodes) == list(range(buf.num_episodes))
    assert_no_lost_or_mixed_transitions(buf)
    # one environment: nothing else under way when an episode ends, so exactly the episodes the budget needs
    for budget, episodes in ((5, 1), (6, 2), (10, 2), (11, 3)):
        one = collect_episodes(
            RandomPolicy(action_space), 1, envs=short_env_fns(family, [5]), family=family, min_transitions=budget
        )
        assert one.buffer.num_episodes == episodes
    first = collect_episodes(
        RandomPolicy(action_space), 3, envs=short_env_fns(family, limits), family=family, min_transitions=target
    )
    np.testing.assert_array_equal(first.buffer.obs, buf.obs)  # deterministic


def test_min_transitions_in_lockstep_runs_whole_waves(family):
    agent = LockstepAgent(1)
    res = collect_episodes(
        agent, 2, envs=short_env_fns(family, [6, 9]), tasks=train_tasks(family, 8), min_transitions=40
    )
    assert agent.resets == [2, 2, 2]  # 15 transitions per wave: 15, 30, 45 >= 40
    assert_no_lost_or_mixed_transitions(res.buffer, [6, 9] * 3)


def test_drop_rule_ends_once_finished_episodes_hold_the_budget(family, action_space):
    # episodes of 5, 7, 9 steps, each autoreset costing one step: they end at vector steps 5, 7, 9, 11 (env 0
    # again), 15 (env 1 again): finished transitions 5, 12, 21, 26, 33 >= 30, so the collection ends at step 15
    # with env 2's (from step 10) and env 0's (from step 12) episodes under way and dropped
    limits = [5, 7, 9]
    res = collect_episodes(
        RandomPolicy(action_space), 3, envs=short_env_fns(family, limits), family=family, min_transitions=30,
        under_way="drop",
    )  # fmt: skip
    buf = res.buffer
    assert buf.num_transitions == 33 and buf.episode_lengths.tolist() == [5, 7, 9, 5, 7]
    assert [s.launch for s in res.episodes] == [0, 1, 2, 3, 4]  # launches 5 and 6 were dropped
    assert [s.length for s in res.episodes] == buf.episode_lengths.tolist()
    assert_no_lost_or_mixed_transitions(buf)
    again = collect_episodes(
        RandomPolicy(action_space), 3, envs=short_env_fns(family, limits), family=family, min_transitions=30,
        under_way="drop",
    )  # fmt: skip
    np.testing.assert_array_equal(again.buffer.obs, buf.obs)  # deterministic
    finish = collect_episodes(
        RandomPolicy(action_space), 3, envs=short_env_fns(family, limits), family=family, min_transitions=30
    )
    assert finish.buffer.num_transitions > 33  # the finish rule ran the two episodes under way to their end
    # episodes finishing on the step that meets the budget are all kept (CaDM adds every finished path)
    same_step = collect_episodes(
        RandomPolicy(action_space), 2, envs=short_env_fns(family, [4, 4]), family=family, min_transitions=6,
        under_way="drop",
    )  # fmt: skip
    assert same_step.buffer.episode_lengths.tolist() == [4, 4]
    # at least num_episodes finished episodes, however small the budget
    few = collect_episodes(
        RandomPolicy(action_space), 4, envs=short_env_fns(family, [5]), family=family, min_transitions=1,
        under_way="drop",
    )  # fmt: skip
    assert few.buffer.episode_lengths.tolist() == [5, 5, 5, 5]
    # CaDM's test loop (min_transitions 1): the first 4 episodes to finish, restarts included: they end at steps 5,
    # 7, 9 and 11 (env 0 again); env 1's second episode (from step 8) and env 2's (from step 10) are dropped
    first = collect_episodes(
        RandomPolicy(action_space), 4, envs=short_env_fns(family, limits), family=family, min_transitions=1,
        under_way="drop",
    )  # fmt: skip
    assert first.buffer.episode_lengths.tolist() == [5, 7, 9, 5]
    assert [(s.launch, s.env_index) for s in first.episodes] == [(0, 0), (1, 1), (2, 2), (3, 0)]


def test_drop_rule_in_lockstep_ends_inside_a_wave(family):
    agent = LockstepAgent(1)
    res = collect_episodes(
        agent, 2, envs=short_env_fns(family, [6, 9]), tasks=train_tasks(family, 8), min_transitions=33,
        under_way="drop",
    )  # fmt: skip
    assert agent.resets == [2, 2, 2]  # 15 transitions per wave; the third wave's 6-step episode brings 36 >= 33
    assert res.buffer.episode_lengths.tolist() == [6, 9, 6, 9, 6]  # its 9-step episode was dropped
    assert_no_lost_or_mixed_transitions(res.buffer)


def test_min_transitions_is_checked(family, action_space):
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="min_transitions must be an int >= 0"):
            collect_episodes(RandomPolicy(action_space), 1, family=family, min_transitions=bad)
    with pytest.raises(ValueError, match="under_way must be 'finish' or 'drop', got 'stop'"):
        collect_episodes(RandomPolicy(action_space), 1, family=family, min_transitions=5, under_way="stop")
    with pytest.raises(ValueError, match="give min_transitions > 0"):
        collect_episodes(RandomPolicy(action_space), 1, family=family, under_way="drop")


def test_plain_callable_policy_and_bad_actions(family, action_space):
    res = collect_episodes(lambda obs: np.zeros((obs.shape[0], 1)), 2, envs=short_env_fns(family, [4]), family=family)
    assert res.buffer.num_transitions == 8 and not res.buffer.action.any()
    with pytest.raises(ValueError, match=r"shape \(1, 2\), expected \(1, 1\)"):
        collect_episodes(lambda obs: np.zeros((1, 2)), 1, envs=short_env_fns(family, [4]), family=family)
    with pytest.raises(ValueError, match="NaN"):
        collect_episodes(lambda obs: np.full((1, 1), np.nan), 1, envs=short_env_fns(family, [4]), family=family)
    with pytest.raises(ValueError, match="num_episodes"):
        collect_episodes(RandomPolicy(action_space), 0, family=family)
    with pytest.raises(ValueError, match="give tasks"):
        collect_episodes(RandomPolicy(action_space), 1, envs=short_env_fns(family, [4]))


def test_random_policy_is_in_bounds_and_seeded(action_space):
    obs = np.zeros((500, 3), np.float32)
    a = RandomPolicy(action_space, seed=0).act(obs)
    assert a.shape == (500, 1) and a.dtype == np.float32
    assert a.min() >= action_space.low[0] and a.max() <= action_space.high[0] and a.std() > 0.5
    np.testing.assert_array_equal(a, RandomPolicy(action_space, seed=0).act(obs))
    assert not np.array_equal(a, RandomPolicy(action_space, seed=1).act(obs))


@pytest.mark.slow  # spawns two worker processes that import torch and MuJoCo (~10 s on a loaded machine)
def test_async_vector_env_matches_sync(family, action_space):
    # builds the envs from the family: its constructors must pickle into spawned worker processes
    kwargs = {"family": family, "tasks": train_tasks(family, 4), "seed": 2, "num_envs": 2}
    kwargs["env_kwargs"] = {"max_episode_steps": 8}
    sync = collect_episodes(RandomPolicy(action_space, seed=5), 4, vectorization="sync", **kwargs)
    asyn = collect_episodes(RandomPolicy(action_space, seed=5), 4, vectorization="async", **kwargs)
    assert asyn.buffer.num_transitions == 32
    np.testing.assert_array_equal(sync.buffer.obs, asyn.buffer.obs)
    np.testing.assert_array_equal(sync.buffer.tasks, asyn.buffer.tasks)


class OraclePendulum:
    """The exact pendulum with each environment's true task: a perfectly adapted oracle model."""

    ensemble_size = 1

    def __init__(self, task):
        self.task = task  # [B, 2] mass, length

    def __call__(self, obs, action):
        shape = (1, -1) + (1,) * (obs.ndim - 3)  # broadcast [B] over [E, B, *S]
        mass, length = (self.task[:, j].reshape(shape).to(obs.dtype) for j in range(2))
        mean = pendulum_dynamics(obs, action, mass, length)
        return Prediction(mean, torch.zeros_like(mean), None)


class OracleModel:
    """Records every context window the agent adapts on."""

    def __init__(self):
        self.windows = []

    def adapt(self, context, mask=None, task=None):
        self.windows.append((context, mask.clone(), task.clone()))
        return OraclePendulum(task)


def test_mpc_agent_plugs_in_and_only_sees_its_own_episodes_transitions(family, action_space):
    model = OracleModel()
    planner = CEMPlanner([-2.0], [2.0], population=32, elites=4, iterations=2)
    agent = MPCAgent(model, planner, family.reward, horizon=8, context_size=4)
    tasks = train_tasks(family, 4) + family.sample(np.random.default_rng(3), 2, "test")
    res = collect_episodes(agent, 6, envs=short_env_fns(family, [12, 17]), tasks=tasks, pass_task=True, seed=0)
    assert_no_lost_or_mixed_transitions(res.buffer)
    assert sorted(s.launch for s in res.episodes) == list(range(6))
    # every real slot of every context window is a true transition of that env's current task: the autoreset step
    # (old final obs -> new first obs) and the previous episode's transitions never leak into a window
    checked = 0
    for context, mask, task in model.windows:
        pred = OraclePendulum(task.double())(context.obs.double()[None], context.action.double()[None])[0][0]
        err = (pred - context.next_obs.double()).abs().amax(-1)  # [B, K]
        assert torch.all(err[mask] < 1e-4)
        checked += int(mask.sum())
    assert checked > 0
    # windows start empty at each episode's first step
    first_steps = sum(int((~m).all(1).sum()) for _, m, _ in model.windows)
    assert first_steps >= 6


# ----- RandomPolicy's scale (loop.initial_scale) --------------------------------------------------------------
def _box(low, high):
    return gym.spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32))


def test_random_policy_scale_shrinks_the_box_about_its_centre():
    space = _box([-1.0, 0.0], [1.0, 4.0])
    actions = RandomPolicy(space, seed=0, scale=0.25).act(np.zeros((4000, 3)))
    assert actions[:, 0].min() >= -0.25 and actions[:, 0].max() <= 0.25
    assert actions[:, 1].min() >= 1.5 and actions[:, 1].max() <= 2.5
    assert actions[:, 0].max() - actions[:, 0].min() > 0.45  # still spans (almost all of) the shrunk range
    full = RandomPolicy(space, seed=0).act(np.zeros((4000, 3)))
    assert full[:, 0].max() - full[:, 0].min() > 1.9


def test_random_policy_scale_one_is_the_default_stream():
    space = _box([-2.0, 0.5], [1.0, 3.0])
    np.testing.assert_array_equal(
        RandomPolicy(space, seed=3, scale=1.0).act(np.zeros((16, 1))),
        RandomPolicy(space, seed=3).act(np.zeros((16, 1))),
    )


@pytest.mark.parametrize("scale", [0.0, -0.5, 1.01])
def test_random_policy_rejects_a_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be in"):
        RandomPolicy(_box([-1.0], [1.0]), scale=scale)
