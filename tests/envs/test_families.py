"""Generic contract tests for every registered task family.

Parametrised over ``mbmeta.envs.families()``: a family registered by any module is covered automatically. Each test
checks one invariant of the task-family layer (see ``mbmeta/envs/family.py`` and ``task_env.py``).
"""

from __future__ import annotations

import math
import re
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import mbmeta.envs
from mbmeta.envs.family import Choice, TaskFamily, TaskParams, check_disjoint

FAMILIES = mbmeta.envs.families()
IDS = [f.name for f in FAMILIES]
family_param = pytest.mark.parametrize("family", FAMILIES, ids=IDS)

REWARD_STEPS = 1000
REWARD_ATOL = 1e-5
# check_env warnings that are expected of MuJoCo envs: Gymnasium's own v5 envs raise the infinity ones, and the
# normalised-action advice concerns envs whose action range is physical (the pendulum's [-2, 2] N·m, as in Pendulum-v1).
BENIGN_CHECK_ENV_WARNINGS = (
    "observation space minimum value is -infinity",
    "observation space maximum value is infinity",
    "we recommend using a symmetric and normalized space",
)


# ----- helpers ---------------------------------------------------------------------------------------------------
def mixed_tasks(family: TaskFamily, seed: int, n: int) -> list[TaskParams]:
    """``n`` tasks alternating train and test splits (train first)."""
    rng = np.random.default_rng(seed)
    train = family.sample(rng, n, "train")
    test = family.sample(rng, n, "test")
    return [train[i // 2] if i % 2 == 0 else test[i // 2] for i in range(n)]


def random_actions(env: gym.Env, rng: np.random.Generator, n: int) -> np.ndarray:
    """``[n, A]`` actions uniform in the (bounded) action space."""
    space = env.action_space
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)


def model_arrays(mj_model: mujoco.MjModel) -> dict[str, np.ndarray]:
    """Copies of every numeric array of an MjModel (and of its ``opt``), to compare model states."""
    out = {}
    for owner, prefix in ((mj_model, ""), (mj_model.opt, "opt.")):
        for name in dir(owner):
            if name.startswith("_"):
                continue
            try:
                value = getattr(owner, name)
            except Exception:  # some attributes are only readable in some builds
                continue
            if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
                out[prefix + name] = value.copy()
    return out


def differing_fields(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    return [k for k in a if not np.array_equal(a[k], b[k])]


def assert_task_info(info: dict, task: TaskParams) -> None:
    assert "task" in info, "info must carry the current task"
    got = info["task"]
    assert set(got) == set(task.as_dict()), f"info['task'] keys {sorted(got)} != {sorted(task.as_dict())}"
    for name, value in task.as_dict().items():
        assert math.isclose(float(got[name]), value, rel_tol=0, abs_tol=1e-12), (name, got[name], value)


def rollout(env: gym.Env, task: TaskParams, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observations ``[T+1, O]`` and rewards ``[T]`` of one seeded rollout (stops early at an episode end)."""
    obs, _ = env.reset(seed=seed, options={"task": task})
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards)


def egl_unavailable_reason() -> str | None:
    """None if an offscreen GL context can be made, else why not."""
    try:
        ctx = mujoco.GLContext(16, 16)
        ctx.make_current()
        ctx.free()
    except Exception as err:  # any failure here means "no offscreen GL on this machine"
        return f"offscreen OpenGL (MUJOCO_GL={__import__('os').environ.get('MUJOCO_GL')}) unavailable: {err!r}"
    return None


# ----- registration ----------------------------------------------------------------------------------------------
def test_some_families_registered():
    assert FAMILIES, "import mbmeta.envs registered no task family"


@family_param
def test_registered_with_gymnasium(family):
    assert family.env_id.startswith("mbmeta/") and family.env_id.endswith("-v0"), family.env_id
    assert family.env_id in gym.registry
    env = gym.make(family.env_id)
    try:
        assert env.unwrapped.family is family
        assert env.spec.max_episode_steps == family.episode_steps
    finally:
        env.close()
    assert mbmeta.envs.get_family(family.name) is family
    assert mbmeta.envs.get_family(family.env_id) is family


def test_unknown_family_lists_valid_names():
    with pytest.raises(KeyError) as err:
        mbmeta.envs.get_family("no-such-family")
    for family in FAMILIES:
        assert family.name in str(err.value)


# ----- Gymnasium API -----------------------------------------------------------------------------------------------
@family_param
def test_check_env(family):
    env = gym.make(family.env_id)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped, skip_render_check=True)
        unexpected = [str(w.message) for w in caught if not any(b in str(w.message) for b in BENIGN_CHECK_ENV_WARNINGS)]
        assert not unexpected, f"check_env warned: {unexpected}"
    finally:
        env.close()


@family_param
def test_check_env_under_test_task(family):
    # the checker's reset/step determinism checks must also hold once a non-nominal task is set
    env = gym.make(family.env_id)
    try:
        env.unwrapped.task = mixed_tasks(family, seed=3, n=2)[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@family_param
def test_deterministic_for_seed_and_task(family):
    task = mixed_tasks(family, seed=1, n=2)[1]
    env_a, env_b = gym.make(family.env_id), gym.make(family.env_id)
    try:
        actions = random_actions(env_a, np.random.default_rng(0), 60)
        obs_a, rew_a = rollout(env_a, task, seed=7, actions=actions)
        obs_b, rew_b = rollout(env_b, task, seed=7, actions=actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        # the same env again, after other tasks were used, gives the same trajectory (no leftover state)
        rollout(env_a, mixed_tasks(family, seed=2, n=1)[0], seed=8, actions=actions[:10])
        obs_c, rew_c = rollout(env_a, task, seed=7, actions=actions)
        np.testing.assert_array_equal(obs_a, obs_c)
        np.testing.assert_array_equal(rew_a, rew_c)
    finally:
        env_a.close()
        env_b.close()


# ----- exact reward and termination --------------------------------------------------------------------------------
def collect_transitions(family: TaskFamily, steps: int, seed: int) -> dict[str, np.ndarray]:
    """``steps`` random transitions, cycling through train and test tasks (a new task every quarter)."""
    env = gym.make(family.env_id)
    rng = np.random.default_rng(seed)
    tasks = mixed_tasks(family, seed=seed, n=4)
    block = steps // len(tasks)
    out = {k: [] for k in ("obs", "action", "next_obs", "reward", "terminated")}
    try:
        for i, task in enumerate(tasks):
            obs, _ = env.reset(seed=seed + i, options={"task": task})
            for action in random_actions(env, rng, block):
                next_obs, reward, terminated, truncated, info = env.step(action)
                for key, value in zip(out, (obs, action, next_obs, reward, terminated), strict=True):
                    out[key].append(value)
                obs = next_obs
                if terminated or truncated:
                    obs, _ = env.reset()
    finally:
        env.close()
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def transitions():
    cache: dict[str, dict[str, np.ndarray]] = {}

    def get(family: TaskFamily) -> dict[str, np.ndarray]:
        if family.name not in cache:
            cache[family.name] = collect_transitions(family, REWARD_STEPS, seed=11)
        return cache[family.name]

    return get


@family_param
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_reward_matches_env_step(family, dtype, transitions):
    data = transitions(family)
    args = [torch.as_tensor(data[k], dtype=dtype) for k in ("obs", "action", "next_obs")]
    reward = family.reward(*args)
    assert reward.shape == (len(data["reward"]),), f"reward shape {tuple(reward.shape)}"
    assert reward.dtype == dtype, f"reward dtype {reward.dtype} for {dtype} inputs"
    err = np.abs(reward.double().numpy() - data["reward"].astype(np.float64))
    worst = int(err.argmax())
    assert err.max() <= REWARD_ATOL, (
        f"max |family.reward - env reward| = {err.max():.3g} at step {worst} "
        f"(env {data['reward'][worst]!r}, family {reward[worst].item()!r})"
    )


@family_param
def test_terminated_matches_env_step(family, transitions):
    data = transitions(family)
    for dtype in (torch.float32, torch.float64):
        args = [torch.as_tensor(data[k], dtype=dtype) for k in ("obs", "action", "next_obs")]
        terminated = family.terminated(*args)
        assert terminated.dtype == torch.bool
        assert terminated.shape == (len(data["terminated"]),)
        mismatch = np.flatnonzero(terminated.numpy() != data["terminated"].astype(bool))
        assert mismatch.size == 0, f"{dtype}: terminated differs from env.step at steps {mismatch[:10]}"


@family_param
def test_reward_and_terminated_any_leading_dims(family, transitions):
    data = transitions(family)
    n = 200
    args = [torch.as_tensor(data[k][:n], dtype=torch.float32) for k in ("obs", "action", "next_obs")]
    flat_r, flat_t = family.reward(*args), family.terminated(*args)
    shaped = [a.reshape(4, 5, 10, a.shape[-1]) for a in args]
    r, t = family.reward(*shaped), family.terminated(*shaped)
    assert r.shape == (4, 5, 10) and t.shape == (4, 5, 10)
    torch.testing.assert_close(r.reshape(-1), flat_r)
    assert torch.equal(t.reshape(-1), flat_t)


# ----- tasks -------------------------------------------------------------------------------------------------------
@family_param
def test_info_carries_task_and_obs_does_not(family):
    env = gym.make(family.env_id)
    try:
        first, second = mixed_tasks(family, seed=4, n=2)
        obs_1, info = env.reset(seed=5, options={"task": first})
        assert_task_info(info, first)
        _, _, _, _, info = env.step(env.action_space.sample())
        assert_task_info(info, first)
        # reset without a task keeps the current one
        _, info = env.reset(seed=5)
        assert_task_info(info, first)
        # the attribute route (what vector envs' set_attr uses)
        env.unwrapped.task = second
        obs_2, info = env.reset(seed=5)
        assert_task_info(info, second)
        assert env.unwrapped.task == family.validate(second)
        # the task is not in the observation: same seed, different task -> same initial observation and same size
        assert obs_1.shape == obs_2.shape == env.observation_space.shape
        np.testing.assert_array_equal(obs_1, obs_2, err_msg="initial observation depends on the task")
    finally:
        env.close()


@family_param
def test_apply_task_idempotent_and_never_compounding(family):
    env = gym.make(family.env_id)
    try:
        model = env.unwrapped.model
        nominal = model_arrays(model)
        a, b = mixed_tasks(family, seed=6, n=2)
        env.reset(seed=0, options={"task": a})
        after_a = model_arrays(model)
        env.unwrapped.task = a
        env.reset(seed=0, options={"task": a})
        assert not differing_fields(after_a, model_arrays(model)), "setting the same task twice changed the model"
        env.reset(seed=0, options={"task": b})
        after_b = model_arrays(model)
        assert differing_fields(after_a, after_b), "two different tasks left the MuJoCo model identical"
        env.reset(seed=0, options={"task": a})
        changed = differing_fields(after_a, model_arrays(model))
        assert not changed, f"task a -> b -> a differs from a in {changed} (compounding?)"
        env.reset(seed=0, options={"task": family.nominal()})
        changed = differing_fields(nominal, model_arrays(model))
        assert not changed, f"back to the nominal task, the model differs from the built one in {changed}"
    finally:
        env.close()


@family_param
def test_each_parameter_changes_the_model(family):
    env = gym.make(family.env_id)
    try:
        model = env.unwrapped.model
        train, test = mixed_tasks(family, seed=9, n=2)
        env.unwrapped.task = train
        base = model_arrays(model)
        for p in family.parameters:
            if math.isclose(train[p.name], test[p.name]):
                continue
            env.unwrapped.task = {**train.as_dict(), p.name: test[p.name]}
            assert differing_fields(base, model_arrays(model)), f"parameter {p.name!r} does not change the model"
            env.unwrapped.task = train
    finally:
        env.close()


@family_param
def test_invalid_parameter_values_raise(family):
    env = gym.make(family.env_id)
    try:
        env.reset(seed=0)
        good = family.nominal().as_dict()
        before = model_arrays(env.unwrapped.model)
        for p in family.parameters:
            bad_values = [math.nan, math.inf, p.minimum - 1.0] + ([p.minimum] if p.strict else [])
            for bad in bad_values:
                task = {**good, p.name: bad}
                with pytest.raises(ValueError, match=re.escape(p.name)):
                    env.reset(options={"task": task})
                with pytest.raises(ValueError, match=re.escape(p.name)):
                    env.unwrapped.task = task
        # a rejected task leaves the env and its model as they were
        assert env.unwrapped.task == family.nominal()
        assert not differing_fields(before, model_arrays(env.unwrapped.model))
    finally:
        env.close()


@family_param
def test_unknown_or_missing_parameter_names_raise(family):
    env = gym.make(family.env_id)
    try:
        good = family.nominal().as_dict()
        with pytest.raises(KeyError) as err:
            env.reset(options={"task": {**good, "no_such_parameter": 1.0}})
        assert "no_such_parameter" in str(err.value)
        for name in family.parameter_names:
            assert name in str(err.value), f"error does not list valid parameter {name!r}: {err.value}"
        missing = dict(list(good.items())[1:])
        with pytest.raises(KeyError, match=family.parameter_names[0]):
            env.unwrapped.task = missing
    finally:
        env.close()


@family_param
def test_bad_actions_raise(family):
    env = gym.make(family.env_id)
    try:
        env.reset(seed=0)
        shape = env.action_space.shape
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros((shape[0] + 1,), dtype=np.float32))
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros((1, *shape), dtype=np.float32))
        nan_action = np.zeros(shape, dtype=np.float32)
        nan_action[0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            env.step(nan_action)
    finally:
        env.close()


# ----- splits ------------------------------------------------------------------------------------------------------
@family_param
def test_splits_disjoint_and_samples_in_split(family):
    check_disjoint(family, samples=300, seed=0)
    rng = np.random.default_rng(0)
    for task in family.sample(rng, 100, "train"):
        assert family.in_split(task, "train") and not family.in_split(task, "test"), task
        family.validate(task)  # every split value is physically valid
    for task in family.sample(rng, 100, "test"):
        assert family.in_split(task, "test"), task
        family.validate(task)
    for task in family.sample(rng, 50, "validation") if family.validation else ():
        assert family.in_split(task, "validation") and not family.in_split(task, "train"), task
        assert not family.in_split(task, "test"), task
        family.validate(task)


def test_juggler_validation_split_lies_between_train_and_test():
    from mbmeta.evaluation.episodes import evaluation_tasks

    family = mbmeta.envs.get_family("juggler_bounce_servo")
    tasks = evaluation_tasks(family, "validation")
    assert len(tasks) == 16  # the whole {0.7, 1.35}^4 grid
    assert {v for task in tasks for v in task.values()} == {0.7, 1.35}
    assert len(set(tasks)) == 16
    two_joint = evaluation_tasks(mbmeta.envs.get_family("juggler_balance_2j"), "validation")
    assert len(two_joint) == 4 and all(set(task) == {"ball_mass_scale", "friction_scale"} for task in two_joint)


def test_a_family_without_a_validation_split_names_its_splits():
    with pytest.raises(ValueError, match=r"'pendulum'.*unknown split 'validation'; valid splits are 'train', 'test'$"):
        mbmeta.envs.get_family("pendulum").regions("validation")
    with pytest.raises(ValueError, match=r"unknown split 'validation'; valid splits are \['train', 'test', 'test_"):
        mbmeta.envs.get_family("halfcheetah_mass").regions("validation")


def test_check_disjoint_catches_a_validation_split_overlapping_test():
    class Overlapping(type(mbmeta.envs.get_family("juggler_bounce_servo"))):
        name = "overlapping"
        validation = (
            {
                name: Choice((0.7, 1.5))
                for name in ("ball_mass_scale", "friction_scale", "restitution_scale", "gear_scale")
            },
        )

    with pytest.raises(ValueError, match="validation task .* lies in the test split"):
        check_disjoint(Overlapping(), samples=50, seed=0)


# ----- rendering ---------------------------------------------------------------------------------------------------
@family_param
def test_render_rgb_array(family):
    reason = egl_unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        env = gym.make(family.env_id, render_mode="rgb_array", width=64, height=48)
        expected = (48, 64, 3)
    except TypeError:  # an env without width/height arguments renders at its default size
        env = gym.make(family.env_id, render_mode="rgb_array")
        expected = None
    try:
        env.reset(seed=0, options={"task": mixed_tasks(family, seed=0, n=2)[1]})
        env.step(env.action_space.sample())
        frame = env.render()
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3, frame.shape
        if expected is not None:
            assert frame.shape == expected
        assert frame.std() > 0, "rendered frame is blank"
    finally:
        env.close()


# ----- vector environments -----------------------------------------------------------------------------------------
@family_param
def test_vector_env_set_attr_gives_each_env_its_task(family):
    n = 3
    venv = gym.vector.SyncVectorEnv([lambda: gym.make(family.env_id) for _ in range(n)])
    try:
        tasks = mixed_tasks(family, seed=12, n=n)
        venv.set_attr("task", tasks)
        _, infos = venv.reset(seed=0)
        for i, task in enumerate(tasks):
            assert venv.envs[i].unwrapped.task == family.validate(task)
            for name, value in task.as_dict().items():
                assert math.isclose(float(infos["task"][name][i]), value), (i, name)
        actions = random_actions(venv.envs[0], np.random.default_rng(0), n)
        _, _, _, _, infos = venv.step(actions)
        for i, task in enumerate(tasks):
            for name, value in task.as_dict().items():
                assert math.isclose(float(infos["task"][name][i]), value), (i, name)
        assert [t.as_dict() for t in venv.get_attr("task")] == [family.validate(t).as_dict() for t in tasks]
    finally:
        venv.close()


# ----- success ---------------------------------------------------------------------------------------------------
@family_param
def test_success_of_a_random_episode_is_false_or_undefined(family):
    from mbmeta.control.collection import RandomPolicy, collect_episodes

    env = family.make_env()
    policy = RandomPolicy(env.action_space, seed=0)
    env.close()
    # The whole episode up to 250 steps: on the servo juggler variants (success = the ball kept to the time limit),
    # gentle random actions keep the ball ~1.6-2 s, so a 60-step window could end before the ball falls.
    steps = min(family.episode_steps, 250)
    collection = collect_episodes(policy, 1, family=family, num_envs=1, seed=0, env_kwargs={"max_episode_steps": steps})
    success = collection.episodes[0].success
    assert success is family.success(collection.buffer.episode(0))  # what collection reports is the family's
    assert success is None if not family.success_text else success is False  # random actions reach no goal


def test_held_upright_needs_the_whole_tail_within_tolerance():
    from mbmeta.envs.family import held_upright

    up, down = np.ones(100), -np.ones(100)
    assert held_upright(up) and not held_upright(down) and not held_upright(np.ones(0))
    late_fall = np.concatenate([up[:95], down[:5]])
    assert not held_upright(late_fall)  # the last 10 steps must all be upright
    assert held_upright(np.concatenate([down[:90], up[:10]]))
    assert held_upright(np.full(20, math.cos(0.29))) and not held_upright(np.full(20, math.cos(0.31)))


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_pole_families_succeed_on_an_upright_finish(name):
    family = mbmeta.envs.get_family(name)
    env = family.make_env()
    obs_dim = env.observation_space.shape[0]
    env.close()
    cos_index = 0 if name == "pendulum" else 1
    next_obs = np.zeros((50, obs_dim), dtype=np.float32)
    next_obs[:, cos_index] = 1.0
    episode = {"next_obs": next_obs, "terminated": np.zeros(50, dtype=bool)}
    assert family.success(episode) is True
    episode["next_obs"][-1, cos_index] = -1.0
    assert family.success(episode) is False
